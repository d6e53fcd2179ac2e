// The entry point of every generated trainer: the model comes from the generated model.cpp.
#include "runtime/model_spec.h"

int main(int argc, char** argv) { return nnc::rt::runTrainer(nnc::rt::kModel, argc, argv); }
