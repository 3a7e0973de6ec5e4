// A minimal reader of HDF5 file metadata: the v2/v3 superblock and v2 object headers of datasets.
//
// Hand-written rather than linking libhdf5: opening a table must cost microseconds and no
// library start-up, and the table core needs only where each dataset's bytes lie (contiguous
// layout), its shape and its element type. Every structure is bounds-checked and its HDF5
// checksum verified; anything outside that subset raises FormatError naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mapped_file.h"

namespace nb360 {

struct Superblock {
  std::uint64_t offset = 0;        // absolute file offset of the superblock (= the user block size)
  std::uint64_t base_address = 0;  // absolute offset that HDF5 addresses are relative to
  std::uint64_t eof_address = 0;   // relative end-of-file address recorded by HDF5
  std::uint64_t root_address = 0;  // relative address of the root group's object header
  int version = 0;
  int offset_size = 8;
  int length_size = 8;
};

struct DatasetInfo {
  std::vector<std::uint64_t> shape;
  char kind = '?';           // 'u' unsigned int, 'i' signed int, 'f' IEEE float (little-endian only)
  int itemsize = 0;          // bytes per element
  std::uint64_t offset = 0;  // absolute file offset of the first element
  std::uint64_t nbytes = 0;  // prod(shape) * itemsize
  std::uint64_t numel = 0;
  std::string dtype() const { return std::string(1, kind) + std::to_string(itemsize); }
};

// True when the file carries the HDF5 signature where HDF5 looks for it (at 0, 512, 1024, ...).
bool has_hdf5_signature(const MappedFile& file);

// Finds and validates the superblock (at 0, 512, 1024, ...), checking its checksum and that the
// file is as long as HDF5 recorded (a truncated download fails here).
Superblock read_superblock(const MappedFile& file);

// Parses the object header at relative `address` and returns the dataset it describes. Only
// contiguous (or compact), unfiltered datasets of little-endian integers or floats are accepted.
DatasetInfo read_dataset(const MappedFile& file, const Superblock& sb, std::uint64_t address);

}  // namespace nb360
