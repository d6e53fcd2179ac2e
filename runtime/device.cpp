// Finding the GPU and its driver; see device.h. The drivers are loaded with dlopen, as Halide's runtime loads them,
// so a trainer links against neither and builds without their SDKs.
#include "runtime/device.h"

#include <HalideRuntime.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace nnc::rt {

namespace {

// `name`, or where only the driver's versioned library is installed (no development package), `name`.1.
void* loadLibrary(const char* name) {
  if (void* lib = dlopen(name, RTLD_LAZY)) return lib;
  return dlopen((std::string(name) + ".1").c_str(), RTLD_LAZY);
}

template <typename Fn>
Fn symbol(void* lib, const char* name, const std::string& api) {
  void* address = dlsym(lib, name);
  if (!address) throw DeviceError(api + " driver without `" + name + "`");
  return reinterpret_cast<Fn>(address);
}

// The CUDA driver API (cuda.h), the calls and attributes used here.
constexpr int kCuMultiprocessors = 16, kCuCapabilityMajor = 75, kCuCapabilityMinor = 76;

Device findCudaDevice(int index) {
  void* lib = loadLibrary("libcuda.so");
  if (!lib)
    throw DeviceError("this trainer's kernels run on an NVIDIA GPU (built with --target=cuda), and NVIDIA's driver "
                      "(libcuda.so) is not installed on this machine");
  auto init = symbol<int (*)(unsigned)>(lib, "cuInit", "CUDA");
  auto count_devices = symbol<int (*)(int*)>(lib, "cuDeviceGetCount", "CUDA");
  auto get = symbol<int (*)(int*, int)>(lib, "cuDeviceGet", "CUDA");
  auto name_of = symbol<int (*)(char*, int, int)>(lib, "cuDeviceGetName", "CUDA");
  auto attribute = symbol<int (*)(int*, int, int)>(lib, "cuDeviceGetAttribute", "CUDA");
  if (int code = init(0); code != 0)
    throw DeviceError("NVIDIA's driver did not start (cuInit error " + std::to_string(code) + "): no usable GPU");
  int count = 0;
  count_devices(&count);
  if (count <= 0) throw DeviceError("NVIDIA's driver finds no GPU on this machine");
  std::vector<int> units(count, 0), major(count, 0), minor(count, 0);
  std::vector<std::string> names(count);
  for (int i = 0; i < count; ++i) {
    int device = 0;
    char name[256] = {0};
    get(&device, i);
    name_of(name, sizeof name, device);
    attribute(&units[i], kCuMultiprocessors, device);
    attribute(&major[i], kCuCapabilityMajor, device);
    attribute(&minor[i], kCuCapabilityMinor, device);
    names[i] = name;
  }
  if (index >= count)
    throw DeviceError("--device " + std::to_string(index) + ": NVIDIA's driver has " + std::to_string(count) +
                      " GPU(s), numbered from 0");
  if (index < 0) {  // Halide's runtime: the only one, else the one with the most multiprocessors (the last of equals)
    index = 0;
    for (int i = 0; i < count; ++i)
      if (units[i] >= units[index]) index = i;
  }
  if (major[index] < 8)
    throw DeviceError("GPU " + std::to_string(index) + " (" + names[index] + ") has compute capability " +
                      std::to_string(major[index]) + "." + std::to_string(minor[index]) +
                      "; this trainer's kernels need 8.0 or later (sm_80)");
  return {"cuda", index, count,
          names[index] + ", compute capability " + std::to_string(major[index]) + "." + std::to_string(minor[index]) +
              ", " + std::to_string(units[index]) + " multiprocessors"};
}

// OpenCL (CL/cl.h), the calls and constants used here.
using ClId = void*;
constexpr uint32_t kClPlatformName = 0x0902, kClDeviceName = 0x102B, kClComputeUnits = 0x1002;
constexpr uint64_t kClCpu = 1 << 1, kClGpu = 1 << 2, kClAccelerator = 1 << 3, kClAll = 0xFFFFFFFF;

Device findOpenClDevice(int index) {
  void* lib = loadLibrary("libOpenCL.so");
  if (!lib)
    throw DeviceError("this trainer's kernels run on an OpenCL device (built with --target=opencl), and no OpenCL "
                      "loader (libOpenCL.so, Debian's ocl-icd-libopencl1) is installed on this machine");
  auto platforms_of = symbol<int32_t (*)(uint32_t, ClId*, uint32_t*)>(lib, "clGetPlatformIDs", "OpenCL");
  auto platform_info = symbol<int32_t (*)(ClId, uint32_t, size_t, void*, size_t*)>(lib, "clGetPlatformInfo", "OpenCL");
  auto devices_of = symbol<int32_t (*)(ClId, uint64_t, uint32_t, ClId*, uint32_t*)>(lib, "clGetDeviceIDs", "OpenCL");
  auto device_info = symbol<int32_t (*)(ClId, uint32_t, size_t, void*, size_t*)>(lib, "clGetDeviceInfo", "OpenCL");
  ClId platforms[16];
  uint32_t platform_count = 0;
  if (platforms_of(16, platforms, &platform_count) != 0 || platform_count == 0)
    throw DeviceError("no OpenCL platform on this machine: install a driver (an ICD), for example Debian's "
                      "pocl-opencl-icd, which runs OpenCL on the CPU");
  // Halide's runtime: the platform whose name contains HL_OCL_PLATFORM_NAME, else the first.
  const char* wanted = std::getenv("HL_OCL_PLATFORM_NAME");
  ClId platform = nullptr;
  std::string platform_name;
  for (uint32_t p = 0; p < platform_count && !platform; ++p) {
    char name[256] = {0};
    platform_info(platforms[p], kClPlatformName, sizeof name - 1, name, nullptr);
    if (!wanted || !*wanted || std::strstr(name, wanted)) {
      platform = platforms[p];
      platform_name = name;
    }
  }
  if (!platform) throw DeviceError(std::string("no OpenCL platform named like HL_OCL_PLATFORM_NAME `") + wanted + "`");
  uint64_t type = 0;
  if (const char* types = std::getenv("HL_OCL_DEVICE_TYPE")) {
    if (std::strstr(types, "cpu")) type |= kClCpu;
    if (std::strstr(types, "gpu")) type |= kClGpu;
    if (std::strstr(types, "acc")) type |= kClAccelerator;
  }
  ClId devices[128];
  uint32_t count = 0;
  if (devices_of(platform, type ? type : kClAll, 128, devices, &count) != 0 || count == 0)
    throw DeviceError("OpenCL platform `" + platform_name + "` has no device" +
                      (type ? " of the types HL_OCL_DEVICE_TYPE names" : ""));
  if (index >= static_cast<int>(count))
    throw DeviceError("--device " + std::to_string(index) + ": OpenCL platform `" + platform_name + "` has " +
                      std::to_string(count) + " device(s), numbered from 0");
  std::vector<uint32_t> units(count, 0);
  for (uint32_t i = 0; i < count; ++i) device_info(devices[i], kClComputeUnits, sizeof(uint32_t), &units[i], nullptr);
  if (index < 0) {  // as Halide's runtime picks: the one with the most compute units (the last of equals)
    index = 0;
    for (uint32_t i = 0; i < count; ++i)
      if (units[i] >= units[index]) index = static_cast<int>(i);
  }
  char name[256] = {0};
  device_info(devices[index], kClDeviceName, sizeof name - 1, name, nullptr);
  return {"opencl", index, static_cast<int>(count),
          std::string(name) + " (" + platform_name + "), " + std::to_string(units[index]) + " compute units"};
}

extern "C" void* loadDriver(const char* name) { return loadLibrary(name); }

}  // namespace

std::string gpuApiOf(const ModelSpec& model) {
  std::string target = std::string("-") + model.target + "-";
  for (const char* api : {"cuda", "opencl"})
    if (target.find(std::string("-") + api + "-") != std::string::npos) return api;
  return "";
}

std::string Device::describe() const {
  return api + " device " + std::to_string(index) + " of " + std::to_string(count) + ": " + name;
}

Device findDevice(const std::string& api, int index) {
  return api == "cuda" ? findCudaDevice(index) : findOpenClDevice(index);
}

void selectDevice(const ModelSpec& model, int index) {
  std::string api = gpuApiOf(model);
  if (api.empty()) {
    if (index >= 0)
      throw DeviceError("--device: this trainer's kernels run on the CPU (built for " + std::string(model.target_name) +
                        "); build it with --target=cuda or --target=opencl to run them on a GPU");
    return;
  }
  halide_set_custom_load_library(loadDriver);
  Device device = findDevice(api, index);
  halide_set_gpu_device(device.index);
}

}  // namespace nnc::rt
