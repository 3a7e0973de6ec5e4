// Host-emulation stand-in for CUDA's cuda_runtime_api.h: the few runtime types nb360's kernel
// sources use (see nb360_cuda_emulator.h). Test-only.
#pragma once

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;
typedef struct CUstream_st* cudaStream_t;

cudaError_t cudaGetLastError();
