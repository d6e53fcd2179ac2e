// Helpers shared by the runtime tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runtime/errors.h"

namespace nnc::rt {

// Runs `f`, expects a DataError, and returns its message.
template <typename F>
std::string dataErrorOf(F f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a DataError";
  return "";
}

}  // namespace nnc::rt
