#!/usr/bin/env python3
"""Writes labelled_pairs.jsonl: hand-written gold/pred pairs plus seeded families whose labels follow from exact
arithmetic done here with `fractions` (never from the verifier under test). Every record carries its reason.

Run: python3 crates/verify/tests/data/gen_labelled_pairs.py  (deterministic; rewrites the JSONL beside it)."""
import json
import os
import random
from fractions import Fraction

T, F = True, False
pairs = []


def add(cat, gold, pred, label, reason):
    pairs.append({"category": cat, "gold": gold, "pred": pred, "label": label, "reason": reason})


def block(cat, rows):
    for gold, pred, label, reason in rows:
        add(cat, gold, pred, label, reason)


block("number", [
    ("3", "3", T, "identical"),
    ("3", "3.0", T, "3.0 is exactly 3"),
    ("3", "03", T, "leading zero does not change the integer"),
    ("-2", "- 2", T, "spacing after the sign"),
    ("0.5", ".5", T, "same decimal without the leading zero"),
    ("7", "-7", F, "opposite sign"),
    ("10", "100", F, "different integers"),
    ("1000", "1e3", T, "scientific notation 1e3 = 1000"),
    ("0.00001", "1e-05", T, "program output 1e-05 = 0.00001"),
    ("0.3", "0.1+0.2", T, "exact decimal arithmetic: 1/10 + 2/10 = 3/10 (no float error)"),
    ("\\frac{1}{3}", "0.3333333333", F, "a truncated decimal is not 1/3 in strict mode"),
    ("\\frac{1}{3}", "0.\\overline{3}", T, "repeating decimal 0.333... = 1/3"),
    ("\\frac{1}{6}", "0.1\\overline{6}", T, "repeating decimal 0.1666... = 1/6"),
    ("\\frac{1}{7}", "0.\\overline{142857}", T, "repeating block of six digits"),
    ("\\frac{1}{3}", "0.\\overline{6}", F, "0.666... = 2/3"),
    ("2", "2.000", T, "trailing zeros"),
    ("12", "12.", T, "trailing decimal point"),
    ("-0", "0", T, "negative zero is zero"),
    ("1.25", "\\frac{5}{4}", T, "1.25 = 5/4"),
    ("\\frac{5}{4}", "1\\frac{1}{4}", T, "mixed number 1 1/4"),
    ("2.5", "2\\frac{1}{2}", T, "mixed number 2 1/2"),
    ("1", "2\\cdot\\frac{1}{2}", T, "explicit product is not a mixed number"),
    ("\\frac{2x}{3}", "2\\frac{x}{3}", T, "a symbolic fraction after a number is a product"),
    ("100", "10^2", T, "10² = 100"),
    ("1024", "2^{10}", T, "2^10 = 1024"),
    ("1024", "2**10", T, "python power notation"),
    ("6", "2\\cdot 3", T, "product 2·3 = 6"),
    ("23", "2\\cdot 3", F, "2·3 is 6, not the digits 2 and 3 glued (DeepSeek cleanup bug)"),
    ("6", "2 \\times 3", T, "\\times product"),
    ("6", "(2)(3)", T, "implicit multiplication of groups"),
    ("0", "0.0", T, "zero"),
    ("-\\frac{1}{2}", "\\frac{-1}{2}", T, "sign in the numerator"),
    ("-\\frac{1}{2}", "\\frac{1}{-2}", T, "sign in the denominator"),
    ("-\\frac{1}{2}", "-0.5", T, "decimal"),
    ("\\frac{1}{2}", "-0.5", F, "sign differs"),
    ("\\frac{2}{4}", "\\frac{1}{2}", T, "unreduced fraction"),
    ("\\frac{6}{8}", "0.75", T, "6/8 = 0.75"),
    ("\\dfrac{3}{4}", "0.75", T, "\\dfrac is \\frac"),
    ("\\tfrac34", "\\frac{3}{4}", T, "\\tfrac with brace-less digit arguments"),
    ("\\frac12", "0.5", T, "\\frac12 is 1/2"),
    ("\\frac{1}{2}", "1/2", T, "plain slash"),
    ("\\frac{1}{2}", "0.51", F, "close but different"),
    ("\\frac{1}{2}", "\\frac{1}{2}+10^{-30}", F, "differs by 1e-30: exact arithmetic sees it"),
    ("1.0000000001", "1", F, "differs in the tenth decimal"),
    ("3.14159", "3.14159", T, "identical decimals"),
    ("-3", "+(-3)", T, "unary plus"),
    ("8", "-(-8)", T, "double negation"),
    ("\\frac{10}{3}", "3.\\overline{3}", T, "repeating decimal 3.333... = 10/3"),
    ("2", "\\sqrt{4}", T, "square root of a perfect square"),
    ("-2", "\\sqrt{4}", F, "principal root is positive"),
    ("\\frac{1}{8}", "2^{-3}", T, "negative exponent"),
    ("9", "3^2", T, "power"),
    ("81", "3^4", T, "power"),
    ("1", "1^{100}", T, "power of one"),
    ("0", "0^{5}", T, "zero power"),
    ("7", "\\frac{14}{2}", T, "fraction with integer value"),
    ("0.125", "\\frac18", T, "1/8"),
    ("0.2", "\\frac{1}{5}", T, "1/5"),
    ("2.5", "\\frac{5}{2}", T, "5/2"),
    ("2.5", "\\frac{2}{5}", F, "inverted fraction"),
    ("\\frac{22}{7}", "3.142857", F, "truncated decimal of 22/7"),
    ("5", "5.5", F, "different decimals"),
    ("1000000", "10^6", T, "a million"),
    ("15", "\\frac{45}{3}", T, "45/3"),
    ("-15", "15", F, "sign"),
])

block("thousands", [
    ("1000", "1,000", T, "comma thousands separator"),
    ("1000", "1{,}000", T, "LaTeX {,} thousands separator"),
    ("1000000", "1\\,000\\,000", T, "thin-space separators"),
    ("12345.67", "12,345.67", T, "separator with decimals"),
    ("100", "1,000", F, "1,000 is a thousand"),
    ("1234567", "1,234,567", T, "two separators"),
    ("1,000", "1000.0", T, "separator on the gold side"),
    ("1\\!000", "1000", T, "negative thin space as separator"),
    ("10,000", "10000", T, "ten thousand"),
    ("10,000", "1000", F, "off by a factor of ten"),
    ("-1,500", "-1500", T, "negative with separator"),
    ("1,2", "12", F, "1,2 is a list (second group has one digit)"),
    ("1,2", "2,1", T, "list of two answers, order irrelevant"),
])

block("radical", [
    ("2\\sqrt{2}", "\\sqrt{8}", T, "√8 = 2√2"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", T, "rationalised denominator"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt2}", T, "rationalised denominator"),
    ("\\sqrt{2}", "1.414", F, "decimal approximation is not exact"),
    ("\\sqrt{2}", "1.41421356237", F, "decimal approximation is not exact"),
    ("\\sqrt{5}", "\\sqrt{2}+\\sqrt{3}", F, "√2+√3 ≈ 3.15 ≠ √5"),
    ("2\\sqrt{3}", "\\sqrt{12}", T, "√12 = 2√3"),
    ("2\\sqrt[3]{2}", "\\sqrt[3]{16}", T, "∛16 = 2∛2"),
    ("\\sqrt{3}", "3^{1/2}", T, "fractional exponent"),
    ("\\sqrt{3}", "3^{\\frac{1}{2}}", T, "fractional exponent with \\frac"),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{2}{\\sqrt{5}-1}", T, "2/(√5−1) = (√5+1)/2"),
    ("\\sqrt{2}+1", "\\frac{1}{\\sqrt{2}-1}", T, "conjugate"),
    ("\\sqrt{2}-1", "\\frac{1}{\\sqrt{2}-1}", F, "conjugate with the wrong sign"),
    ("3\\sqrt{2}", "\\sqrt{18}", T, "√18"),
    ("3\\sqrt{2}", "\\sqrt{16}", F, "√16 = 4"),
    ("\\sqrt{6}", "\\sqrt{2}\\sqrt{3}", T, "product of roots"),
    ("\\sqrt{6}", "\\sqrt{2}+\\sqrt{3}", F, "sum is not the product"),
    ("\\frac{\\sqrt{6}}{3}", "\\sqrt{\\frac{2}{3}}", T, "root of a fraction"),
    ("\\frac{3\\sqrt{2}}{4}", "\\frac{3}{4}\\sqrt{2}", T, "coefficient placement"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", T, "coefficient placement"),
    ("4\\sqrt{2}", "\\sqrt{32}", T, "√32 = 4√2"),
    ("5\\sqrt{5}", "\\sqrt{125}", T, "√125"),
    ("5\\sqrt{5}", "5^{3/2}", T, "5^(3/2) = 5√5"),
    ("2", "\\sqrt[3]{8}", T, "cube root"),
    ("-2", "\\sqrt[3]{-8}", T, "real cube root of a negative"),
    ("2", "8^{1/3}", T, "fractional exponent"),
    ("\\sqrt{2}", "2^{0.5}", T, "decimal exponent 0.5"),
    ("\\sqrt{10}", "\\sqrt{2}\\cdot\\sqrt{5}", T, "product of roots"),
    ("\\sqrt{3}", "\\sqrt{3.0}", T, "decimal radicand"),
    ("\\sqrt{3}-\\sqrt{2}", "\\frac{1}{\\sqrt{3}+\\sqrt{2}}", T, "conjugate of a sum of two radicals"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{3}}{2}", F, "different radicands"),
    ("\\sqrt{x^2}", "x", F, "√(x²) = |x|, not x"),
    ("2\\sqrt{6}", "\\sqrt{24}", T, "√24"),
    ("6\\sqrt{3}", "\\sqrt{108}", T, "√108"),
    ("\\sqrt{50}", "5\\sqrt{2}", T, "√50"),
    ("\\frac{5\\sqrt{2}}{2}", "\\frac{5}{\\sqrt{2}}", T, "rationalised"),
    ("\\sqrt[4]{16}", "2", T, "fourth root"),
    ("\\sqrt{1000003^2}", "1000003", T, "root of a square of a large prime"),
])

block("constant", [
    ("2\\pi", "2 \\pi", T, "spacing"),
    ("\\frac{\\pi}{2}", "\\pi/2", T, "slash"),
    ("\\pi", "3.14", F, "π is not 3.14"),
    ("\\pi", "\\frac{22}{7}", F, "22/7 is an approximation"),
    ("e^2", "e \\cdot e", T, "e² = e·e"),
    ("6\\pi", "6pi", T, "plain pi"),
    ("6\\pi", "6π", T, "unicode π"),
    ("\\frac{9\\pi}{4}", "\\dfrac{9}{4}\\pi", T, "coefficient placement"),
    ("\\pi r^2", "r^2\\pi", T, "commuted product"),
    ("4\\pi", "2\\pi", F, "different multiples"),
    ("\\pi^2", "2\\pi", F, "square vs double"),
    ("e", "2.718", F, "approximation of e"),
    ("\\frac{1}{e}", "e^{-1}", T, "reciprocal"),
    ("\\pi+1", "1+\\pi", T, "commuted"),
    ("18\\pi", "18\\pi\\text{ cm}^2", T, "unit with a power"),
    ("100\\pi", "100 \\pi", T, "spacing"),
    ("\\frac{4}{3}\\pi", "\\frac{4\\pi}{3}", T, "coefficient placement"),
    ("2\\pi - 4", "-4 + 2\\pi", T, "commuted"),
    ("\\pi", "\\pi^1", T, "explicit first power"),
    ("\\pi", "e", F, "different constants"),
])

block("polynomial", [
    ("x^2+2x+1", "(x+1)^2", T, "binomial square"),
    ("x^2-1", "(x-1)(x+1)", T, "difference of squares"),
    ("2x+3", "3+2x", T, "commuted"),
    ("x^2", "2x", F, "different"),
    ("x+2", "\\frac{x^2-4}{x-2}", T, "equal as rational functions (removable singularity)"),
    ("(a-b)(a+b)", "a^2-b^2", T, "difference of squares in two variables"),
    ("\\frac{x+y}{xy}", "\\frac{1}{x}+\\frac{1}{y}", T, "sum of reciprocals"),
    ("x^3-1", "(x-1)(x^2+x+1)", T, "difference of cubes"),
    ("x^3+1", "(x-1)(x^2+x+1)", F, "sign error"),
    ("(x+1)^3", "x^3+3x^2+3x+1", T, "binomial cube"),
    ("(x+1)^3", "x^3+3x^2+3x", F, "missing constant term"),
    ("6x^2+5x-6", "(2x+3)(3x-2)", T, "factored"),
    ("6x^2+5x-6", "(2x-3)(3x+2)", F, "wrong factor signs"),
    ("\\frac{1}{2}x", "\\frac{x}{2}", T, "coefficient placement"),
    ("\\frac{x}{2}", "0.5x", T, "decimal coefficient"),
    ("x y", "yx", T, "commuted product"),
    ("2(x+y)", "2x+2y", T, "distributed"),
    ("a^2+b^2", "(a+b)^2", F, "missing cross term"),
    ("x^{2}y", "x^2 y", T, "braced exponent"),
    ("\\frac{x-1}{x+1}", "\\frac{1-x}{1+x}", F, "negated numerator"),
    ("\\frac{x-1}{x+1}", "\\frac{2x-2}{2x+2}", T, "common factor"),
    ("\\frac{1}{x-1}-\\frac{1}{x+1}", "\\frac{2}{x^2-1}", T, "partial fractions"),
    ("4x^2-4x+1", "(2x-1)^2", T, "square"),
    ("n(n+1)/2", "\\frac{n^2+n}{2}", T, "triangular number formula"),
    ("\\frac{n(n+1)(2n+1)}{6}", "\\frac{2n^3+3n^2+n}{6}", T, "sum of squares formula"),
    ("\\frac{n(n+1)(2n+1)}{6}", "\\frac{2n^3+3n^2+n}{3}", F, "wrong denominator"),
    ("x_1+x_2", "x_2+x_1", T, "subscripted variables"),
    ("x_1+x_2", "x_1+x_3", F, "different subscripts"),
    ("a_{10}", "a_{10}", T, "identical"),
    ("(x+y+z)^2", "x^2+y^2+z^2+2xy+2yz+2zx", T, "trinomial square"),
    ("(x+1)^{100}", "(1+x)^{100}", T, "large power: kept symbolic with a canonical key"),
    ("(x+1)^{10}", "x^{10}+1", F, "missing middle terms"),
    ("x^{-1}", "\\frac{1}{x}", T, "negative exponent"),
    ("\\frac{x^2}{x}", "x", T, "cancel"),
    ("2^x \\cdot 2^x", "4^x", T, "symbolic exponents (numeric fallback)"),
    ("2^x", "x^2", F, "exponential vs power"),
    ("2^{x+1}", "2\\cdot 2^x", T, "numeric fallback at random points"),
    ("k^2+k", "k(k+1)", T, "factored"),
    ("\\alpha+\\beta", "\\beta+\\alpha", T, "Greek variables"),
    ("\\theta", "\\alpha", F, "different Greek variables"),
])

block("function", [
    ("1", "\\sin^2 x + \\cos^2 x", T, "Pythagorean identity (numeric fallback)"),
    ("\\frac{1}{2}", "\\sin\\frac{\\pi}{6}", T, "exact trig value"),
    ("\\frac{1}{2}", "\\sin(\\pi/6)", T, "exact trig value"),
    ("\\frac{\\sqrt{3}}{2}", "\\cos\\frac{\\pi}{6}", T, "exact trig value"),
    ("1", "\\tan\\frac{\\pi}{4}", T, "exact trig value"),
    ("\\frac{\\sqrt2}{2}", "\\sin 45^\\circ", T, "sin 45° = √2/2 (degrees inside trig are angles)"),
    ("\\frac{1}{2}", "\\cos 60^{\\circ}", T, "cos 60° = 1/2"),
    ("\\frac{\\pi}{4}", "45^\\circ", F, "a bare degree sign is read as a unit, so 45 ≠ π/4; documented"),
    ("3", "\\log_2 8", T, "log base 2 of 8"),
    ("3", "\\log_{2}{8}", T, "braced arguments"),
    ("2\\ln 2", "\\ln 4", T, "log of a power"),
    ("\\ln 2", "0.693", F, "approximation"),
    ("\\log 6", "\\log 2 + \\log 3", T, "log of a product"),
    ("3", "e^{\\ln 3}", T, "exp of log (numeric fallback)"),
    ("\\sin 2x", "2\\sin x\\cos x", T, "double-angle identity (numeric)"),
    ("\\cos 2x", "2\\sin x\\cos x", F, "different functions"),
    ("\\frac{\\pi}{4}", "\\arctan 1", T, "arctan 1 = π/4 (numeric)"),
    ("\\frac{\\pi}{3}", "\\arccos\\frac{1}{2}", T, "arccos 1/2 = π/3 (numeric)"),
    ("-1", "\\cos\\pi", T, "cos π"),
    ("0", "\\sin\\pi", T, "sin π"),
    ("|x|", "\\left|x\\right|", T, "\\left|...\\right|"),
    ("|x-1|", "|1-x|", T, "absolute value symmetry (numeric)"),
    ("3", "|-3|", T, "absolute value"),
    ("3", "\\lfloor 3.7 \\rfloor", T, "floor"),
    ("4", "\\lceil 3.2 \\rceil", T, "ceiling"),
    ("2", "\\log_{3} 9", T, "log base 3"),
    ("\\frac{1}{2}", "\\log_4 2", T, "fractional log"),
    ("\\frac{\\ln 5}{\\ln 2}", "\\log_2 5", T, "change of base"),
    ("\\log_2 5", "\\log_5 2", F, "inverse bases"),
    ("e^x", "\\exp(x)", T, "exp notation"),
    ("\\sqrt{3}", "\\tan\\frac{\\pi}{3}", T, "exact tan"),
    ("\\frac{2\\sqrt{3}}{3}", "\\sec\\frac{\\pi}{6}", T, "exact sec"),
])

block("tuple", [
    ("(1,2)", "(1, 2)", T, "spacing"),
    ("(1,2)", "(2,1)", F, "ordered pair: order matters"),
    ("(\\frac{1}{2}, 3)", "(0.5, 3)", T, "element-wise equality"),
    ("(1,2,3)", "(1,2)", F, "different lengths"),
    ("(1,2)", "\\left(1,2\\right)", T, "\\left/\\right"),
    ("(-1, \\sqrt{2})", "(-1, \\frac{2}{\\sqrt2})", T, "element-wise exact"),
    ("(3, -4)", "(3, 4)", F, "sign of the second coordinate"),
    ("(1,2)", "1,2", F, "an ordered pair is not an unordered list"),
    ("(1,2)", "[1,2]", F, "open interval/pair vs closed interval"),
    ("(2, 3, 5)", "(2,3,5)", T, "triple"),
    ("(0, 0)", "(0,0)", T, "origin"),
    ("(a, b)", "(b, a)", F, "order"),
    ("(x+1, 2)", "(1+x, 2)", T, "expressions inside"),
])

block("interval", [
    ("[1,2)", "[1, 2)", T, "spacing"),
    ("[1,2)", "(1,2)", F, "bracket type matters"),
    ("[1,2)", "[1,2]", F, "bracket type matters"),
    ("(-\\infty, 3]", "(-\\infty,3]", T, "spacing"),
    ("(-\\infty, 3]", "x \\le 3", T, "inequality describing the interval"),
    ("(0,\\infty)", "x>0", T, "inequality describing the interval"),
    ("(0,\\infty)", "x \\ge 0", F, "closed vs open at 0"),
    ("[2,5]", "2 \\le x \\le 5", T, "chained inequality"),
    ("[2,5)", "2 \\le x < 5", T, "chained inequality"),
    ("(-\\infty,1)\\cup(2,\\infty)", "(2,\\infty)\\cup(-\\infty,1)", T, "union is unordered"),
    ("(-\\infty,1)\\cup(2,\\infty)", "(-\\infty,1]\\cup(2,\\infty)", F, "endpoint included"),
    ("(-\\infty, \\infty)", "(-\\infty,\\infty)", T, "whole line"),
    ("[0, \\pi]", "[0, 3.14]", F, "π is not 3.14"),
    ("(\\frac{1}{2}, 1]", "(0.5, 1]", T, "exact endpoint"),
    ("\\left[0,1\\right)", "[0,1)", T, "\\left[ ... \\right)"),
    ("[-2, 2]", "-2 \\le x \\le 2", T, "chained inequality"),
    ("[-2, 2]", "|x| \\le 2", F, "absolute-value inequalities are not converted; conservative"),
    ("(-\\infty, -1) \\cup (1, \\infty)", "(-\\infty,-1)\\cup(1,\\infty)", T, "spacing"),
    ("(1, 5)", "x \\in (1,5)", T, "membership"),
    ("(-\\infty,-2)\\cup(2,\\infty)", "x<-2 \\text{ or } x>2", T, "inequalities joined by 'or' describe the union"),
    ("(-\\infty,-2)\\cup(2,\\infty)", "x<-2 \\text{ or } x \\ge 2", F, "endpoint 2 included"),
    ("(3, \\infty)", "(3, ∞)", T, "unicode infinity"),
])

block("base-and-ratio", [
    ("4210_{7}", "4210_7", T, "same base-7 numeral, braces optional"),
    ("4210_{7}", "4210", T, "the question fixes the base; the digits match"),
    ("4210_{7}", "1470", F, "decimal value instead of the base-7 digits"),
    ("11010_2", "11011_2", F, "different binary numerals"),
    ("3:1", "3:1", T, "identical ratio"),
    ("3:1", "6:2", T, "equal ratios"),
    ("1:2", "2:1", F, "inverted ratio"),
    ("\\frac{12}{5,\\!525}", "\\frac{12}{5525}", T, "thousands separator ,\\! inside a fraction"),
    ("7, -2, -5", "7, -2, \\text{ and } -5", T, "list with a trailing 'and'"),
    ("8\\sqrt{3}", "8\\sqrt{3} \\text { square inches}", T, "unit after \\text with a space"),
])

block("set", [
    ("\\{1,2,3\\}", "\\{3,2,1\\}", T, "sets are unordered"),
    ("\\{1,2\\}", "\\{1,2,3\\}", F, "different sets"),
    ("\\{1,2\\}", "1,2", T, "set of solutions written as a list"),
    ("\\{1,2\\}", "\\{2,1,1\\}", T, "duplicates do not matter in sets"),
    ("\\{\\frac12\\}", "\\{0.5\\}", T, "exact element"),
    ("\\emptyset", "\\varnothing", T, "empty set symbols"),
    ("\\emptyset", "\\{0\\}", F, "empty vs {0}"),
    ("\\{-1, 1\\}", "\\{1, -1\\}", T, "unordered"),
    ("\\{(1,2), (3,4)\\}", "\\{(3,4), (1,2)\\}", T, "set of pairs"),
    ("\\{(1,2), (3,4)\\}", "\\{(2,1), (3,4)\\}", F, "pair order inside a set still matters"),
])

block("list", [
    ("1, 2", "2, 1", T, "several answers, any order"),
    ("-2, 3", "3, -2", T, "several answers, any order"),
    ("1,2", "1", F, "missing an answer"),
    ("1,2", "x=1 \\text{ or } x=2", T, "solutions written as equations joined by 'or'"),
    ("1,2", "x=1, x=2", T, "solutions written as equations"),
    ("1, 2, 3", "1, 2, 4", F, "one wrong answer"),
    ("\\frac12, 2", "2, 0.5", T, "exact elements, any order"),
    ("1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", T, "± expands to both roots"),
    ("\\pm 3", "3, -3", T, "unary ±"),
    ("\\pm 3", "3", F, "only one of the two roots"),
    ("x = \\pm 2", "2, -2", T, "± on the right of an equation"),
    ("1,1,2", "1,2", F, "multiplicity differs in a list"),
    ("3, 5", "3 and 5", T, "'and' separator"),
    ("2; 5", "2, 5", T, "semicolon separator"),
])

block("matrix", [
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", T, "spacing"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", F, "transpose"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", T, "bracket style of a matrix"),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1&2\\end{pmatrix}", F, "column vs row shape"),
    ("\\begin{pmatrix}\\frac12\\\\0\\end{pmatrix}", "\\begin{pmatrix}0.5\\\\0\\end{pmatrix}", T, "exact cells"),
    ("\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}", "(1,2,3)", T, "column vector written as a tuple"),
    ("\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}", "(1,3,2)", F, "component order"),
    ("\\begin{pmatrix}\\sqrt{2}&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}\\frac{2}{\\sqrt2}&0\\\\0&1\\end{pmatrix}", T, "exact cells"),
    ("\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}1&0\\\\0&-1\\end{pmatrix}", F, "one cell differs"),
    ("\\begin{pmatrix}-1\\\\4\\end{pmatrix}", "\\left(\\begin{array}{c}-1\\\\4\\end{array}\\right)", T, "array environment"),
])

block("equation", [
    ("y=2x+1", "2x+1", T, "right side of y = ... is the answer"),
    ("2x+1", "y=2x+1", T, "right side of y = ... is the answer"),
    ("x=3", "3", T, "x = 3 vs the value"),
    ("3", "x=3", T, "value vs x = 3"),
    ("y = 2x+1", "y=2x-1", F, "different lines"),
    ("x+y=1", "y=1-x", T, "same equation rearranged"),
    ("x^2+y^2=1", "y^2+x^2=1", T, "commuted"),
    ("2x+4y=6", "x+2y=3", T, "equation scaled by a constant"),
    ("2x+4y=6", "x+2y=6", F, "different equations"),
    ("y=2x+1", "2x-y+1=0", T, "general form of the same line"),
    ("y=x^2", "x=y^2", F, "different curves"),
    ("k=5", "5", T, "single-letter left side"),
    ("a_n=2n+1", "2n+1", T, "subscripted left side"),
    ("x=3", "y=3", F, "different variables: different equations"),
    ("x=3", "4", F, "different value"),
    ("y=\\frac{1}{2}x", "y=0.5x", T, "exact coefficients"),
    ("x^2-5x+6=0", "(x-2)(x-3)=0", T, "same polynomial equation"),
])

block("inequality", [
    ("x>3", "3<x", T, "flipped inequality"),
    ("x \\ge 2", "x>2", F, "strict vs non-strict"),
    ("x<5", "x>5", F, "opposite direction"),
    ("x \\geq 2", "x \\ge 2", T, "\\geq = \\ge"),
    ("x \\le 2", "x \\leq 2", T, "\\leq = \\le; \\left is not turned into \\le"),
    ("x \\le 2", "2 \\ge x", T, "flipped"),
    ("1 < x < 4", "4 > x > 1", T, "reversed chain"),
    ("2x > 6", "x>3", T, "scaled by a positive constant"),
    ("-x > 3", "x>-3", F, "scaling by a negative flips the direction"),
    ("x \\ne 1", "x \\neq 1", T, "\\ne = \\neq"),
    ("x<=3", "x \\le 3", T, "plain <="),
])

block("percent", [
    ("50\\%", "50", T, "percent sign read as a unit"),
    ("50\\%", "0.5", T, "50% = 0.5"),
    ("50", "0.5", F, "a bare 50 is not 0.5 in strict mode"),
    ("25\\%", "25 \\%", T, "spacing"),
    ("12.5\\%", "12.5", T, "percent sign dropped"),
    ("12.5", "12.5\\%", T, "percent sign on the prediction"),
    ("20\\%", "20 percent", T, "the word percent"),
    ("20\\%", "0.2", T, "value"),
    ("20\\%", "2", F, "wrong value"),
    ("20\\%", "21\\%", F, "different percentages"),
    ("\\frac{1}{3}\\%", "\\frac{1}{300}", T, "percent of a fraction"),
])

block("unit", [
    ("30", "30^\\circ", T, "degree sign stripped"),
    ("45", "45^{\\circ}", T, "degree sign stripped"),
    ("5", "5\\text{ cm}", T, "text unit stripped"),
    ("12.5", "\\$12.50", T, "currency"),
    ("12", "12 dollars", T, "unit word"),
    ("6", "5 cm", F, "different value with a unit"),
    ("16", "16\\text{ square units}", T, "multi-word unit"),
    ("9", "9\\mbox{ inches}", T, "\\mbox unit"),
    ("90", "90°", T, "unicode degree sign"),
    ("4", "4\\text{ cm}^2", T, "unit with a power"),
    ("150", "\\$150", T, "dollar sign"),
    ("2.5", "2.5 \\text{hours}", T, "unit"),
    ("80", "80\\text{ mph}", T, "unit"),
    ("15", "15\\,\\text{m}", T, "thin space before the unit"),
    ("15", "16\\text{ m}", F, "different value"),
    ("1", "1\\text{ way}", T, "word after a number"),
])

block("text", [
    ("\\text{Monday}", "Monday", T, "text wrapper"),
    ("\\text{Monday}", "\\text{monday}", T, "case-insensitive words"),
    ("\\text{Monday}", "Tuesday", F, "different words"),
    ("\\text{(A)}", "A", T, "choice letter"),
    ("B", "(B)", T, "choice letter in parentheses"),
    ("A", "B", F, "different choices"),
    ("\\text{yes}", "Yes", T, "case"),
    ("\\text{no}", "yes", F, "different words"),
    ("\\text{even}", "\\textbf{even}", T, "font command"),
    ("\\text{odd}", "\\text{even}", F, "different words"),
    ("C", "\\text{C}", T, "choice letter in text"),
    ("\\text{(E)}", "E", T, "choice E"),
])

block("noise", [
    ("(1,2)", "\\left(1,2\\right)", T, "\\left/\\right"),
    ("\\frac{1}{2}", "\\frac{1}{2}\\,", T, "trailing thin space"),
    ("0.5", "\\displaystyle\\frac12", T, "\\displaystyle"),
    ("\\frac{1}{2}", "$\\frac{1}{2}$", T, "math delimiters"),
    ("\\frac{1}{2}", "\\(\\frac{1}{2}\\)", T, "math delimiters"),
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{2}}", T, "box left in the answer"),
    ("5", "5.", T, "sentence period"),
    ("\\frac{3}{4}", "\\frac{3}{4}.", T, "sentence period"),
    ("x", "\\left(x\\right)", T, "\\left( is not \\le"),
    ("2", "\\!2", T, "negative thin space"),
    ("\\frac{1}{2}", "\\frac {1} {2}", T, "spaces between arguments"),
    ("\\sqrt{2}", "\\sqrt {2}", T, "space before the argument"),
    ("\\frac{1}{2}", "\\cfrac{1}{2}", T, "\\cfrac"),
    ("x^2", "x^{2}", T, "braced exponent"),
    ("2x", "2\\cdot x", T, "explicit product"),
    ("\\frac{1}{2}", "\\bigl(\\frac{1}{2}\\bigr)", T, "size commands"),
    ("3", "\\;3\\;", T, "spacing commands"),
    ("10", "10\\quad", T, "\\quad"),
    ("\\frac{a}{b}", "a/b", T, "slash"),
    ("\\mathbf{2}", "2", T, "font command"),
])

block("complex", [
    ("3+4i", "4i+3", T, "commuted"),
    ("-1", "i^2", T, "i² = −1"),
    ("i", "\\sqrt{-1}", T, "principal root of −1"),
    ("1+i", "1-i", F, "conjugate"),
    ("2i", "\\sqrt{-4}", T, "√−4 = 2i"),
    ("\\frac{1}{i}", "-i", T, "1/i = −i"),
    ("(1+i)^2", "2i", T, "square"),
    ("\\frac{1+i}{1-i}", "i", T, "quotient"),
    ("3-2i", "3+2i", F, "conjugate"),
    ("5", "|3+4i|", T, "modulus (numeric)"),
])

block("combinatorics", [
    ("120", "5!", T, "factorial"),
    ("15", "\\binom{6}{2}", T, "binomial"),
    ("15", "\\dbinom{6}{4}", T, "symmetric binomial"),
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}", F, "math-verify false positive: distinct tiny numbers"),
    ("\\frac{1}{6}", "\\frac{3!}{36}", T, "factorial inside a fraction"),
    ("720", "6!", T, "factorial"),
    ("10!", "3628800", T, "factorial"),
    ("100!", "100!", T, "identical"),
    ("100!", "99!", F, "different factorials"),
    ("\\frac{100!}{98!}", "9900", T, "exact big integers"),
    ("\\binom{10}{5}", "252", T, "central binomial"),
    ("\\binom{10}{5}", "250", F, "wrong value"),
])

deep = "(" * 40 + "1" + ")" * 40
too_deep = "(" * 200 + "1" + ")" * 200
long_sum = "+".join(["1"] * 1500)
big = "9" * 900
block("adversarial", [
    ("10^{10^{10}}", "10^{10^{10}}", T, "identical tower (must not hang)"),
    ("10^{10^{10}}", "10^{10000000000}", T, "same tower: exponent evaluated, power kept symbolic"),
    ("10^{10^{10}}", "10^{10^{10}}+1", F, "differs by one; too large to evaluate, so not provably equal"),
    ("2^{2^{2^{2^{2}}}}", "2^{65536}", T, "tower reduces to the same symbolic power"),
    ("9^{9^{9}}", "9^{9^9}", T, "braces optional"),
    ("9^{9^{9}}", "9^{9^{8}}", F, "different towers"),
    ("x^{1000000}", "x^{1000000}", T, "identical huge power"),
    ("x^{1000000}", "x^{999999}", F, "different huge powers"),
    ("(x+1)^{1000}", "(x+1)^{1001}", F, "different huge powers of a sum"),
    ("1", deep, T, "40 nested parentheses"),
    ("1", too_deep, F, "nesting past the cap: refused, not evaluated"),
    ("1500", long_sum, T, "1500-term sum"),
    (big, big, T, "identical 900-digit number"),
    (big, "9" * 899 + "8", F, "900-digit numbers differing in the last digit"),
    ("\\frac{1}{0}", "\\infty", F, "division by zero is undefined"),
    ("0", "\\frac{0}{0}", F, "0/0 is undefined"),
    ("1", "0^0", F, "0^0 is left undefined"),
    ("", "0", F, "empty gold"),
    ("0", "", F, "empty prediction"),
    ("0", "None", F, "text vs number"),
    ("1", "\\frac{1}{\\frac{1}{\\frac{1}{1}}}", T, "nested fractions"),
    ("\\sqrt{\\sqrt{\\sqrt{256}}}", "2", T, "nested roots"),
    ("2", "\\sqrt{\\sqrt{\\sqrt{256}}}+10^{-100}", F, "tiny offset"),
    ("1", "1+10^{-400}", F, "offset below double precision, exact arithmetic sees it"),
    ("1", "\\frac{10^{500}+1}{10^{500}}", F, "ratio off by 1e-500"),
    ("1", "\\frac{10^{500}}{10^{500}}", T, "big ratio exactly one"),
    ("1", "\\frac{2^{100000}}{2^{100000}}", T, "identical symbolic powers cancel exactly (no evaluation needed)"),
    ("\\left", "\\le", F, "bare commands"),
    ("x \\le 1", "x \\left(1\\right)", F, "\\left is not \\le"),
    ("2", "\\frac{", F, "unbalanced input"),
    ("2", "}}}{{{2", F, "garbage braces"),
    ("2", "(((2", F, "unclosed parentheses"),
    ("\\sin(10^{10})", "\\sin(10^{10})", T, "identical"),
    ("\\sin(10^{100})", "\\sin(10^{100}+1)", F, "unresolvable numerically: not proven equal"),
    ("e^{1000}", "e^{1000}", T, "identical big exponent"),
    ("e^{1000}", "e^{1001}", F, "different big exponents"),
    ("\\frac{1}{3}", "0.333333333333333333333", F, "a long decimal is still not 1/3"),
    ("\\pi", "3.14159265358979323846", F, "20 digits of π are not π"),
    ("1", "0.999999999999999", F, "close to 1"),
    ("a", "A", F, "variables are case-sensitive"),
    ("x", "y", F, "different variables"),
    ("2x", "x2", T, "x2 is x·2 in math notation"),
    ("\\infty", "\\infty", T, "identical"),
    ("\\infty", "-\\infty", F, "opposite infinities"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{2}}{2}+0\\cdot\\pi", T, "zero term"),
    ("0", "0\\cdot\\infty", F, "0·∞ is undefined, not 0"),
    ("\\infty", "10^{1000}", F, "a large number is not infinity"),
    ("3", "3+\\ln(1.0000000001)", F, "ln(1+1e-10) ≠ 0: a linear form in logs of primes (certified exactly)"),
    ("2", "\\log_2(4.000000000001)", F, "log of a number just above 4; certified via logs of primes"),
    ("\\pi", "4\\arctan(1)", T, "arctan 1 = π/4 (numeric)"),
    ("\\sin x", "\\sin(x+2\\pi)", T, "periodicity (numeric)"),
    ("\\sin x", "\\sin(x+10^{-12})", F, "differs by ~1e-12: below the numeric fallback's resolution (known limitation)"),
    ("e^x", "e^{x+10^{-15}}", F, "differs by ~1e-15 relative: below the numeric resolution (known limitation)"),
    ("-1", "e^{i\\pi}", T, "Euler's identity (complex numeric evaluation)"),
    ("|x|", "\\sqrt{x^2}", T, "√(x²) = |x| (numeric at points of both signs)"),
    ("-2", "(-8)^{1/3}", T, "real cube root of −8"),
])

# ---- Seeded families: labels computed here with exact fractions. ----
rng = random.Random(20240917)


def frac_tex(fr):
    s = "-" if fr < 0 else ""
    fr = abs(fr)
    return f"{s}\\frac{{{fr.numerator}}}{{{fr.denominator}}}" if fr.denominator != 1 else f"{s}{fr.numerator}"


def terminating(fr):
    d = fr.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def decimal(fr, digits=12):
    q = abs(fr)
    whole = q.numerator // q.denominator
    rem = q - whole
    out = []
    for _ in range(digits):
        rem *= 10
        dgt = rem.numerator // rem.denominator
        out.append(str(dgt))
        rem -= dgt
        if rem == 0:
            break
    s = str(whole) + ("." + "".join(out) if out else "")
    return ("-" if fr < 0 else "") + s


seen = set()
while sum(1 for p in pairs if p["category"] == "family-fraction") < 120:
    a, b = rng.randint(-60, 60), rng.randint(2, 40)
    fr = Fraction(a, b)
    if fr.denominator == 1 or (a, b) in seen:
        continue
    seen.add((a, b))
    gold = frac_tex(fr)
    kind = rng.randrange(5)
    if kind == 0 and terminating(fr):
        add("family-fraction", gold, decimal(fr), T, f"{fr} has a terminating decimal expansion")
    elif kind == 1:
        k = rng.randint(2, 5)
        add("family-fraction", gold, f"\\frac{{{a * k}}}{{{b * k}}}", T, f"{a*k}/{b*k} reduces to {fr}")
    elif kind == 2:
        add("family-fraction", gold, f"{a}/{b}", T, f"plain {a}/{b} equals {fr}")
    elif kind == 3 and not terminating(fr):
        add("family-fraction", gold, decimal(fr, 6), F, f"{fr} has no terminating decimal; 6 digits are an approximation")
    else:
        other = fr + Fraction(1, b)
        add("family-fraction", gold, frac_tex(other), F, f"{other} differs from {fr} by 1/{b}")

while sum(1 for p in pairs if p["category"] == "family-radical") < 60:
    k, m = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10, 11])
    gold = f"{k}\\sqrt{{{m}}}"
    if rng.random() < 0.6:
        add("family-radical", gold, f"\\sqrt{{{k * k * m}}}", T, f"sqrt({k*k*m}) = {k}·sqrt({m})")
    else:
        add("family-radical", gold, f"\\sqrt{{{k * k * m + 1}}}", F, f"{k*k*m+1} is not {k}²·{m}")

while sum(1 for p in pairs if p["category"] == "family-polynomial") < 60:
    r1, r2 = rng.randint(-9, 9), rng.randint(-9, 9)
    b_, c_ = -(r1 + r2), r1 * r2
    gold = f"(x{'-' if r1 >= 0 else '+'}{abs(r1)})(x{'-' if r2 >= 0 else '+'}{abs(r2)})"
    expanded = f"x^2{'+' if b_ >= 0 else '-'}{abs(b_)}x{'+' if c_ >= 0 else '-'}{abs(c_)}"
    if rng.random() < 0.6:
        add("family-polynomial", gold, expanded, T, f"(x-{r1})(x-{r2}) expands to x^2+({b_})x+({c_})")
    else:
        wrong = f"x^2{'+' if b_ >= 0 else '-'}{abs(b_)}x{'+' if c_ + 1 >= 0 else '-'}{abs(c_ + 1)}"
        add("family-polynomial", gold, wrong, F, f"constant term should be {c_}, not {c_+1}")

while sum(1 for p in pairs if p["category"] == "family-gsm8k") < 40:
    n = rng.randint(1000, 9_999_999)
    with_commas = f"{n:,}"
    if rng.random() < 0.6:
        add("family-gsm8k", str(n), with_commas, T, f"{with_commas} is {n} with thousands separators")
    else:
        add("family-gsm8k", str(n), f"{n + rng.choice([-10, -1, 1, 10]):,}", F, "off by a small amount")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "labelled_pairs.jsonl")
with open(out, "w", encoding="utf-8") as fh:
    for p in pairs:
        fh.write(json.dumps(p, ensure_ascii=False) + "\n")
print(f"wrote {len(pairs)} pairs to {out}")
