// Checksums of the table core: Jenkins' lookup3 as HDF5 uses it for its metadata, and XXH64 for
// nb360's own index and data chunks (docs/table-format.md, "Checksums").
#pragma once

#include <cstddef>
#include <cstdint>

namespace nb360 {

// lookup3 hashlittle, as HDF5's H5_checksum_metadata (initval 0).
std::uint32_t lookup3(const std::uint8_t* data, std::size_t length, std::uint32_t initval = 0);

// XXH64 (Yann Collet's xxHash, 64-bit variant) of `length` bytes with `seed`.
std::uint64_t xxh64(const std::uint8_t* data, std::size_t length, std::uint64_t seed = 0);

}  // namespace nb360
