// Reads of a memory-mapped table that survive the file shrinking underneath them.
//
// When a mapped file is truncated (or overwritten in place, which truncates it first) while it is
// open, touching a page past its new end raises SIGBUS, which kills the process. Three defences
// were weighed (docs/table-format.md, "Files changed on disk"):
//   * fstat before touching pages: nb360 does this on every lookup (MappedFile::check_unchanged),
//     but a truncation between the check and the read still faults;
//   * pread instead of the mapping: safe, but a copy per lookup and no shared page cache; nb360
//     uses it for metadata only (small, read once);
//   * a SIGBUS handler that jumps out of the faulting read: no cost on the lookup path beyond one
//     sigsetjmp (~7 ns, measured; without saving the signal mask), and it closes the race.
// So every read of mapped table bytes in the core runs inside `guarded(...)`: a SIGBUS raised while
// this thread is inside a guard returns false from `guarded` (the caller throws FileChangedError);
// any other SIGBUS goes to the handler that was installed before (Python's faulthandler, or the
// default action). The guarded function must not create objects with destructors: siglongjmp
// skips them. Views handed to numpy (Table.arrays) read the mapping outside any guard.
#pragma once

#include <csetjmp>

namespace nb360 {

// This thread's jump target while inside a guard (null outside).
extern thread_local sigjmp_buf* tls_sigbus_target __attribute__((tls_model("initial-exec")));

// Installs the SIGBUS handler once per process (again if someone replaced it since).
void install_sigbus_handler();

// Runs f() with the guard armed; false when f faulted on a mapped page.
template <class F>
bool guarded(F&& f) {
  sigjmp_buf target;
  sigjmp_buf* const previous = tls_sigbus_target;
  if (sigsetjmp(target, 0) != 0) {  // 0: the handler runs with SA_NODEFER, so no mask to restore
    tls_sigbus_target = previous;
    return false;
  }
  tls_sigbus_target = &target;
  try {
    f();
  } catch (...) {
    tls_sigbus_target = previous;
    throw;
  }
  tls_sigbus_target = previous;
  return true;
}

}  // namespace nb360
