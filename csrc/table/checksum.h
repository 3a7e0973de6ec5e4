// Jenkins' lookup3 hash as HDF5 uses it for metadata checksums (H5_checksum_metadata, initval 0).
#pragma once

#include <cstddef>
#include <cstdint>

namespace nb360 {

std::uint32_t lookup3(const std::uint8_t* data, std::size_t length, std::uint32_t initval = 0);

}  // namespace nb360
