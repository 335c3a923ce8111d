// terminate.cpp - libmpinotify_cxx.so: the C++ side of reporting uncaught
// exceptions. libmpinotify is C and never needs libstdc++; when it finds the
// C++ runtime already in a process, it dlopens this helper (RTLD_LOCAL) and
// calls mpn_cxx_install, its one entry point (lib/runtime/cxx.c).
//
// The handler runs where std::terminate runs: for an uncaught exception that
// is inside __cxa_throw, after the search for a handler failed and before any
// frame was unwound, so the throw site is still on the stack for the backtrace.
#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

namespace {

typedef void (*report_fn)(const char *type, const char *what);
typedef void (*log_fn)(const char *line);

report_fn report;
std::terminate_handler previous;   // what was installed before us: we end in it

// "std::runtime_error" from the mangled name; the mangled name if that fails.
std::string type_name(const std::type_info *t)
{
  if (!t)
    return "unknown";
  int status = -1;
  char *d = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
  std::string name = d && status == 0 ? d : t->name();
  std::free(d);
  return name;
}

// Type and what() of the exception being handled, if there is one: terminate
// without an exception (a joinable std::thread destroyed, an explicit call)
// is left to the SIGABRT that follows.
void report_current()
{
  std::exception_ptr e = std::current_exception();
  if (!e)
    return;
  std::string type = type_name(abi::__cxa_current_exception_type());
  std::string what;
  bool has_what = false;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception &x) {
    const char *w = x.what();
    what = w ? w : "";
    has_what = true;
  } catch (...) {   // not a std::exception: a type name and no message
  }
  report(type.c_str(), has_what ? what.c_str() : nullptr);
}

[[noreturn]] void on_terminate()
{
  try {
    report_current();
  } catch (...) {   // a what() that throws: still end the way the program would
  }
  if (previous)
    previous();   // libstdc++'s verbose handler prints and aborts
  std::abort();
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int
mpn_cxx_install(void (*report_cb)(const char *type, const char *what), void (*log_cb)(const char *line))
{
  if (!report_cb)
    return -1;
  report = report_cb;
  std::terminate_handler was = std::set_terminate(on_terminate);
  if (was != on_terminate)   // installed twice (a second activation): keep the first chain
    previous = was;
  if (log_cb)
    log_cb(previous ? "C++ terminate handler installed, chaining to the previous one"
                    : "C++ terminate handler installed");
  return 0;
}
