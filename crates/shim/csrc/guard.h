// The error convention of every shim entry point: C++ exceptions never cross the `extern "C"` boundary; an entry
// point returns null on success or a heap-allocated message (malloc) that Rust frees with seekmath_shim_free_error.
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>

namespace seekmath_shim {

inline char* copy_message(const char* message) {
  size_t len = std::strlen(message);
  char* out = static_cast<char*>(std::malloc(len + 1));
  if (out != nullptr) std::memcpy(out, message, len + 1);
  return out;
}

// Runs `body`, turning any exception into a returned message.
template <typename F>
char* guarded(F&& body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error& err) {
    return copy_message(err.what_without_backtrace());
  } catch (const std::exception& err) {
    return copy_message(err.what());
  } catch (...) {
    return copy_message("unknown C++ exception");
  }
}

}  // namespace seekmath_shim
