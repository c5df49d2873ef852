# Sandbox bootstrap (runs under `python -I -S -B -c`): argv = [-c, program, roots_json, site_dirs_json, hook_flag].
# It extends sys.path with the interpreter's site-packages (so math/sympy import under -S), installs an audit
# hook as an in-process second line behind the kernel layers (Landlock, seccomp, namespaces), then runs the
# program as __main__. The hook alone is bypassable; it exists so that even without kernel support a careless
# program fails loudly instead of touching the user's files or the network.
import sys, json, os
_prog, _roots, _sites, _hook_on = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:5] != ["0"]
sys.path.extend(_sites)
sys.argv = [_prog]
_read_roots = tuple(os.path.join(os.path.realpath(r), "") for r in _roots["read"])
_write_roots = tuple(os.path.join(os.path.realpath(r), "") for r in _roots["write"])
_devices = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_blocked = ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
            "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.dlsym", "sys.remote_exec")

def _allowed(path, write):
    if isinstance(path, int):
        return True
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    real = os.path.join(os.path.realpath(os.path.abspath(str(path))), "")
    if real.rstrip("/") in _devices:
        return True
    if real.startswith(_write_roots):
        return True
    return (not write) and real.startswith(_read_roots)

def _hook(event, args):
    if event == "open":
        path, mode = args[0], args[1] or "r"
        write = any(c in str(mode) for c in "wax+") or (isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if path is not None and not _allowed(path, write):
            raise PermissionError(f"sandbox: access to {path!r} denied")
    elif event in ("os.listdir", "os.scandir") and args and args[0] is not None and not _allowed(args[0], False):
        raise PermissionError(f"sandbox: listing {args[0]!r} denied")
    elif event == "socket.__new__" and args[1] != 1:  # 1 = AF_UNIX on Linux
        raise PermissionError("sandbox: network access denied")
    elif event.startswith(_blocked):
        raise PermissionError(f"sandbox: {event} denied")

with open(_prog, encoding="utf-8") as _f:
    _code = compile(_f.read(), _prog, "exec")
if _hook_on:
    sys.addaudithook(_hook)
del _f
exec(_code, {"__name__": "__main__", "__file__": _prog, "__builtins__": __builtins__})
