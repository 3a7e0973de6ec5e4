#include "sigbus_guard.h"

#include <signal.h>

#include <cstring>
#include <mutex>

namespace nb360 {

thread_local sigjmp_buf* tls_sigbus_target __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

struct sigaction previous_action;  // the handler before ours, to chain to
std::mutex install_mutex;

void on_sigbus(int sig, siginfo_t* info, void* context) {
  sigjmp_buf* target = tls_sigbus_target;
  if (target != nullptr && info != nullptr && info->si_code > 0) {  // si_code > 0: a fault, not kill()
    siglongjmp(*target, 1);
  }
  // Not a guarded read: behave as if we were not here.
  if ((previous_action.sa_flags & SA_SIGINFO) != 0 && previous_action.sa_sigaction != nullptr) {
    previous_action.sa_sigaction(sig, info, context);
    return;
  }
  if (previous_action.sa_handler == SIG_IGN) return;
  if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != nullptr) {
    previous_action.sa_handler(sig);
    return;
  }
  // Default action: restore it; a fault re-executes the instruction and dies, a sent signal is re-raised.
  signal(SIGBUS, SIG_DFL);
  if (info == nullptr || info->si_code <= 0) raise(SIGBUS);
}

}  // namespace

void install_sigbus_handler() {
  std::lock_guard<std::mutex> lock(install_mutex);
  struct sigaction current;
  if (sigaction(SIGBUS, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == &on_sigbus) return;
  struct sigaction ours;
  std::memset(&ours, 0, sizeof(ours));
  ours.sa_sigaction = &on_sigbus;
  ours.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  if (sigaction(SIGBUS, &ours, nullptr) == 0) previous_action = current;
}

}  // namespace nb360
