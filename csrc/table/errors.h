// Exceptions of the table core; module.cpp maps them to Python exception types.
#pragma once

#include <stdexcept>
#include <string>

namespace nb360 {

// The file is not a valid nb360 table: corrupt, truncated, foreign, or of another schema version.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The file on disk changed (shrank, was overwritten in place) after it was opened.
struct FileChangedError : FormatError {
  using FormatError::FormatError;
};

// A lookup on a table that was closed.
struct ClosedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A well-formed query for a value the table does not record (its presence mask is 0).
struct MissingValueError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The operating system refused to open or map the file.
struct FileOpenError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An index (arch, metric, epoch, scalar) outside the table's range.
struct OutOfRangeError : std::out_of_range {
  using std::out_of_range::out_of_range;
};

}  // namespace nb360
