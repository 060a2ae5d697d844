# How each dependency is found. Nothing from elsewhere is vendored here: only build glue.
#
# LibTorch: the one inside PyTorch's PyPI wheel. If Torch_DIR / CMAKE_PREFIX_PATH do not point
# at it, ask the Python that has torch installed (override with -DPython3_EXECUTABLE=...).
if(NOT Torch_DIR)
  find_program(RWKV7_PYTHON NAMES python3 python)
  if(RWKV7_PYTHON)
    execute_process(
      COMMAND ${RWKV7_PYTHON} -c "import torch; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE RWKV7_TORCH_PREFIX OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE RWKV7_TORCH_FOUND ERROR_QUIET)
    if(RWKV7_TORCH_FOUND EQUAL 0)
      list(APPEND CMAKE_PREFIX_PATH "${RWKV7_TORCH_PREFIX}")
    endif()
  endif()
endif()

# Only the architectures we build for, not every one LibTorch knows (that would cost minutes).
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()
if(CMAKE_CUDA_COMPILER OR NOT RWKV7_TORCH_PREFIX)
  find_package(Torch REQUIRED)
else()
  # No CUDA toolkit here, but the wheel's LibTorch is built with CUDA, and its CMake package then
  # insists on finding one. Take its CPU libraries by hand instead: everything but the CUDA op
  # builds and runs.
  get_filename_component(RWKV7_TORCH_ROOT "${RWKV7_TORCH_PREFIX}/../.." ABSOLUTE)
  execute_process(COMMAND ${RWKV7_PYTHON} -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
                  OUTPUT_VARIABLE RWKV7_TORCH_ABI OUTPUT_STRIP_TRAILING_WHITESPACE)
  add_library(rwkv7_torch_cpu INTERFACE)
  target_include_directories(rwkv7_torch_cpu SYSTEM INTERFACE
    "${RWKV7_TORCH_ROOT}/include" "${RWKV7_TORCH_ROOT}/include/torch/csrc/api/include")
  target_link_libraries(rwkv7_torch_cpu INTERFACE
    "${RWKV7_TORCH_ROOT}/lib/libtorch.so" "${RWKV7_TORCH_ROOT}/lib/libtorch_cpu.so" "${RWKV7_TORCH_ROOT}/lib/libc10.so")
  target_compile_definitions(rwkv7_torch_cpu INTERFACE _GLIBCXX_USE_CXX11_ABI=${RWKV7_TORCH_ABI}
    USE_DISTRIBUTED USE_C10D_GLOO USE_RPC USE_TENSORPIPE)  # as LibTorch's package defines them
  set(TORCH_LIBRARIES rwkv7_torch_cpu)
  message(STATUS "rwkv7: no CUDA toolkit; using LibTorch's CPU libraries from ${RWKV7_TORCH_ROOT}")
endif()
find_package(Threads REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(fmt REQUIRED)
if(RWKV7_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# Does this LibTorch carry CUDA? (The PyPI wheel does; a CPU-only LibTorch does not.)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(RWKV7_TORCH_HAS_CUDA ON)
else()
  set(RWKV7_TORCH_HAS_CUDA OFF)
endif()

# yaml-cpp's CMake target is called yaml-cpp in Debian 12 and yaml-cpp::yaml-cpp in newer releases.
if(TARGET yaml-cpp::yaml-cpp)
  set(RWKV7_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(RWKV7_YAML_TARGET yaml-cpp)
endif()

# fmt: LibTorch's include folder carries its own (newer) fmt headers, which would shadow
# Debian's and then fail to link against Debian's libfmt. A -I folder is searched before
# LibTorch's -isystem one, so we expose Debian's headers through one of our own.
get_target_property(RWKV7_FMT_INCLUDE fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
list(GET RWKV7_FMT_INCLUDE 0 RWKV7_FMT_INCLUDE)
set(RWKV7_FMT_FIRST "${CMAKE_BINARY_DIR}/fmt-first")
file(MAKE_DIRECTORY "${RWKV7_FMT_FIRST}")
if(NOT EXISTS "${RWKV7_FMT_FIRST}/fmt")
  file(CREATE_LINK "${RWKV7_FMT_INCLUDE}/fmt" "${RWKV7_FMT_FIRST}/fmt" SYMBOLIC)
endif()
add_library(rwkv7_fmt INTERFACE)
target_include_directories(rwkv7_fmt BEFORE INTERFACE "${RWKV7_FMT_FIRST}")
target_link_libraries(rwkv7_fmt INTERFACE fmt::fmt)

# Gloo's headers (Debian: libgloo-dev). LibTorch's wheel has Gloo compiled in but ships no gloo/
# headers, which c10d's ProcessGroupGloo.hpp includes. Without them the trainer builds without
# data parallelism.
find_path(RWKV7_GLOO_INCLUDE gloo/algorithm.h)
if(NOT RWKV7_GLOO_INCLUDE)
  message(WARNING "gloo/algorithm.h not found (apt-get install libgloo-dev): building without data-parallel training")
endif()

# NCCL's header (the CUDA toolkit's, or NVIDIA's nvidia-nccl wheel) for ProcessGroupNCCL on GPUs.
# The wheel's first (torch/share/cmake/Torch -> site-packages/nvidia/nccl/include): the NCCL that
# LibTorch itself was built with; GPU machines may have no NCCL in their CUDA toolkit.
find_path(RWKV7_NCCL_INCLUDE nccl.h HINTS "${Torch_DIR}/../../../../nvidia/nccl/include"
          ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
