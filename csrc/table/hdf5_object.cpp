#include "hdf5_object.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "checksum.h"
#include "cursor.h"
#include "errors.h"

namespace nb360 {
namespace {

const std::uint8_t kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
constexpr std::uint64_t kUndefinedAddress = ~std::uint64_t(0);
constexpr int kMaxContinuations = 256;  // a cycle of continuation blocks in a corrupt file ends here

// HDF5 object header message types used here (HDF5 file format spec, section IV.A.2).
enum MessageType : int {
  kNil = 0x0000,
  kDataspace = 0x0001,
  kDatatype = 0x0003,
  kFilterPipeline = 0x000B,
  kLayout = 0x0008,
  kContinuation = 0x0010,
};

std::string hex(std::uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 0xF]);
    v >>= 4;
  } while (v != 0);
  return "0x" + s;
}

// Checks the lookup3 checksum stored right after [begin, end) of a region.
void verify_checksum(const Region& region, std::uint64_t begin, std::uint64_t end, const std::string& what) {
  Cursor c(region, end, region.end(), what);
  const std::uint32_t stored = c.u32();
  const std::uint32_t computed = lookup3(region.at(begin), static_cast<std::size_t>(end - begin));
  if (stored != computed) {
    throw FormatError(what + " at offset " + std::to_string(begin) + " fails its checksum (stored " + hex(stored) +
                      ", computed " + hex(computed) + "): the file is corrupt");
  }
}

std::uint64_t read_address(Cursor& c, const Superblock& sb) { return c.u(sb.offset_size); }

std::uint64_t absolute(const MappedFile& file, const Superblock& sb, std::uint64_t rel, const std::string& what) {
  if (rel == kUndefinedAddress) throw FormatError(what + " has an undefined address");
  if (rel > file.size() || sb.base_address > file.size() - rel) {
    throw FormatError(what + " points to relative address " + std::to_string(rel) + ", past the end of the file (" +
                      std::to_string(file.size()) + " bytes): the file is truncated or corrupt");
  }
  return sb.base_address + rel;
}

struct Parsed {
  bool has_space = false, has_type = false, has_layout = false, filtered = false;
  std::vector<std::uint64_t> shape;
  char kind = '?';
  int itemsize = 0;
  int layout_class = -1;
  std::uint64_t data_address = kUndefinedAddress;  // relative (contiguous) or absolute (compact)
  std::uint64_t data_size = 0;
};

void parse_dataspace(Cursor c, const Superblock& sb, Parsed& p) {
  const int version = c.u8();
  const int rank = c.u8();
  const int flags = c.u8();
  if (version == 1) {
    c.skip(5);  // reserved
  } else if (version == 2) {
    const int type = c.u8();
    if (type == 2) throw FormatError("dataset has a null dataspace (no elements); nb360 tables never write one");
  } else {
    throw FormatError("unsupported HDF5 dataspace message version " + std::to_string(version));
  }
  if (rank > 32) throw FormatError("dataspace rank " + std::to_string(rank) + " exceeds HDF5's limit of 32");
  p.shape.clear();
  for (int i = 0; i < rank; ++i) p.shape.push_back(c.u(sb.length_size));
  (void)flags;  // maximum dimensions and permutations do not affect where the data lies
  p.has_space = true;
}

void parse_datatype(Cursor c, Parsed& p) {
  const int class_and_version = c.u8();
  const int type_class = class_and_version & 0x0F;
  const int bits0 = c.u8();
  c.skip(2);  // the rest of the class bit field
  const std::uint32_t size = c.u32();
  const bool big_endian = (bits0 & 0x01) != 0;
  if (type_class == 0) {  // fixed-point
    p.kind = (bits0 & 0x08) ? 'i' : 'u';
    if (size != 1 && size != 2 && size != 4 && size != 8)
      throw FormatError("unsupported integer size " + std::to_string(size));
  } else if (type_class == 1) {  // IEEE floating point
    if ((bits0 & 0x40) != 0) throw FormatError("VAX-order floating point is not supported");
    p.kind = 'f';
    if (size != 4 && size != 8) throw FormatError("unsupported float size " + std::to_string(size));
  } else {
    throw FormatError("unsupported HDF5 datatype class " + std::to_string(type_class) +
                      " (nb360 tables store little-endian integers and floats only)");
  }
  if (big_endian) throw FormatError("big-endian data is not supported (nb360 tables are little-endian)");
  p.itemsize = static_cast<int>(size);
  p.has_type = true;
}

void parse_layout(Cursor c, const Superblock& sb, Parsed& p) {
  const int version = c.u8();
  if (version != 3 && version != 4) {
    throw FormatError("unsupported HDF5 data layout message version " + std::to_string(version));
  }
  p.layout_class = c.u8();
  if (p.layout_class == 0) {  // compact: the data lives inside the object header
    p.data_size = c.u16();
    p.data_address = c.pos();  // absolute
    c.skip(p.data_size);
  } else if (p.layout_class == 1) {  // contiguous
    p.data_address = read_address(c, sb);
    p.data_size = c.u(sb.length_size);
  } else {
    throw FormatError(std::string("dataset uses ") + (p.layout_class == 2 ? "chunked" : "virtual") +
                      " storage; nb360 tables must be contiguous and uncompressed so they can be memory-mapped");
  }
  p.has_layout = true;
}

// Walks the messages in [begin, end) of one object header chunk; queues continuation blocks.
void walk_messages(const Region& region, const Superblock& sb, std::uint64_t begin, std::uint64_t end,
                   bool creation_order, Parsed& p, std::vector<std::pair<std::uint64_t, std::uint64_t>>& continuations) {
  const std::uint64_t header_size = creation_order ? 6 : 4;
  Cursor c(region, begin, end, "HDF5 object header");
  while (c.remaining() >= header_size) {
    const int type = c.u8();
    const std::uint64_t size = c.u16();
    const int flags = c.u8();
    if (creation_order) c.skip(2);
    c.need(size);
    const std::uint64_t body = c.pos();
    Cursor m(region, body, body + size, "HDF5 object header message");
    if ((flags & 0x02) != 0 && (type == kDatatype || type == kDataspace)) {
      throw FormatError("shared (committed) datatypes or dataspaces are not supported in nb360 tables");
    }
    switch (type) {
      case kDataspace: parse_dataspace(m, sb, p); break;
      case kDatatype: parse_datatype(m, p); break;
      case kLayout: parse_layout(m, sb, p); break;
      case kFilterPipeline: p.filtered = true; break;
      case kContinuation: {
        const std::uint64_t addr = read_address(m, sb);
        const std::uint64_t len = m.u(sb.length_size);
        continuations.emplace_back(addr, len);
        break;
      }
      default: break;  // attributes, fill values, modification times, ...: not needed to map the data
    }
    c.seek(body + size);
  }
}

}  // namespace

namespace {
// HDF5 looks for the superblock at 0 and then at every power of two from 512 (after a user block).
bool find_signature(const MappedFile& file, std::uint64_t& at) {
  at = 0;
  while (at + 8 <= file.size()) {
    if (std::memcmp(file.read(at, 8, "the HDF5 signature").bytes.data(), kHdf5Signature, 8) == 0) return true;
    at = (at == 0) ? 512 : at * 2;
  }
  return false;
}
}  // namespace

bool has_hdf5_signature(const MappedFile& file) {
  std::uint64_t at = 0;
  return find_signature(file, at);
}

Superblock read_superblock(const MappedFile& file) {
  std::uint64_t at = 0;
  if (!find_signature(file, at)) throw FormatError("not an HDF5 file (no HDF5 signature found)");
  Superblock sb;
  sb.offset = at;
  // Superblock v2/v3: signature, 4 bytes, 4 addresses of at most 8 bytes, checksum: at most 48 bytes.
  const Region region = file.read(at, std::min<std::uint64_t>(48, file.size() - at), "the HDF5 superblock");
  Cursor c(region, at + 8, region.end(), "HDF5 superblock");
  sb.version = c.u8();
  if (sb.version != 2 && sb.version != 3) {
    throw FormatError("HDF5 superblock version " + std::to_string(sb.version) +
                      " is not supported: nb360 tables are written with superblock version 2 or 3 (HDF5 >= 1.10)");
  }
  sb.offset_size = c.u8();
  sb.length_size = c.u8();
  if ((sb.offset_size != 4 && sb.offset_size != 8) || (sb.length_size != 4 && sb.length_size != 8)) {
    throw FormatError("HDF5 superblock has unsupported address/length sizes");
  }
  c.skip(1);  // file consistency flags
  sb.base_address = c.u(sb.offset_size);
  c.u(sb.offset_size);  // superblock extension address
  sb.eof_address = c.u(sb.offset_size);
  sb.root_address = c.u(sb.offset_size);
  verify_checksum(region, at, c.pos(), "HDF5 superblock");
  if (sb.base_address != at) {
    throw FormatError("HDF5 superblock base address " + std::to_string(sb.base_address) +
                      " differs from its position " + std::to_string(at) + "; nb360 does not support that");
  }
  // HDF5 (1.10 to 2.0) stores the end-of-file address as the absolute file size, user block included.
  if (sb.eof_address > file.size()) {
    throw FormatError("the file is truncated: HDF5 recorded " + std::to_string(sb.eof_address) +
                      " bytes but the file has " + std::to_string(file.size()) + "; download or copy it again");
  }
  return sb;
}

DatasetInfo read_dataset(const MappedFile& file, const Superblock& sb, std::uint64_t address) {
  const std::uint64_t start = absolute(file, sb, address, "a dataset object header");
  // The prefix: signature, version, flags, optional times (16) and phase values (4), chunk size (<= 8).
  const Region prefix = file.read(start, std::min<std::uint64_t>(34, file.size() - start), "an HDF5 object header");
  Cursor c(prefix, start, prefix.end(), "HDF5 object header");
  const std::uint8_t* sig = c.bytes(4);
  if (std::memcmp(sig, "OHDR", 4) != 0) {
    throw FormatError("no HDF5 object header at offset " + std::to_string(start) +
                      " (the table index points at something else: the file was modified or is corrupt)");
  }
  const int version = c.u8();
  if (version != 2) throw FormatError("unsupported HDF5 object header version " + std::to_string(version));
  const int flags = c.u8();
  if (flags & 0x20) c.skip(16);  // access/modification/change/birth times
  if (flags & 0x10) c.skip(4);   // attribute phase change values
  const std::uint64_t chunk_size = c.u(1 << (flags & 0x03));
  const std::uint64_t data_begin = c.pos();
  if (chunk_size > file.size() || data_begin > file.size() - chunk_size || file.size() - chunk_size - data_begin < 4) {
    throw FormatError("HDF5 object header at offset " + std::to_string(start) + " claims " + std::to_string(chunk_size) +
                      " bytes, past the end of the file: the file is truncated or corrupt");
  }
  const std::uint64_t data_end = data_begin + chunk_size;
  const Region region = file.read(start, data_end + 4 - start, "an HDF5 object header");
  verify_checksum(region, start, data_end, "HDF5 object header");

  Parsed p;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> continuations;
  const bool creation_order = (flags & 0x04) != 0;
  walk_messages(region, sb, data_begin, data_end, creation_order, p, continuations);
  for (std::size_t i = 0; i < continuations.size(); ++i) {
    if (i >= static_cast<std::size_t>(kMaxContinuations)) throw FormatError("too many object header continuations");
    const std::uint64_t block = absolute(file, sb, continuations[i].first, "an object header continuation");
    const std::uint64_t len = continuations[i].second;
    if (len < 8 || len > file.size() - block) throw FormatError("object header continuation block is out of bounds");
    const Region more = file.read(block, len, "an HDF5 object header continuation");
    if (std::memcmp(more.bytes.data(), "OCHK", 4) != 0) throw FormatError("bad object header continuation block");
    verify_checksum(more, block, block + len - 4, "HDF5 object header continuation");
    walk_messages(more, sb, block + 4, block + len - 4, creation_order, p, continuations);
  }

  if (!p.has_space || !p.has_type || !p.has_layout) {
    throw FormatError("the object at offset " + std::to_string(start) + " is not a dataset (missing " +
                      (!p.has_space ? "dataspace" : (!p.has_type ? "datatype" : "layout")) + " message)");
  }
  if (p.filtered) throw FormatError("dataset is filtered (compressed); nb360 tables must be uncompressed");

  DatasetInfo info;
  info.shape = p.shape;
  info.kind = p.kind;
  info.itemsize = p.itemsize;
  std::uint64_t numel = 1;
  for (std::uint64_t d : p.shape) {
    if (d != 0 && numel > (~std::uint64_t(0)) / d) throw FormatError("dataset shape overflows");
    numel *= d;
  }
  if (numel > (~std::uint64_t(0)) / static_cast<std::uint64_t>(p.itemsize)) throw FormatError("dataset size overflows");
  info.numel = numel;
  info.nbytes = numel * static_cast<std::uint64_t>(p.itemsize);
  if (info.nbytes == 0) {
    info.offset = 0;
    return info;
  }
  if (p.data_size != info.nbytes) {
    throw FormatError("dataset storage holds " + std::to_string(p.data_size) + " bytes but its shape and type need " +
                      std::to_string(info.nbytes));
  }
  if (p.layout_class == 0) {
    info.offset = p.data_address;
  } else {
    if (p.data_address == kUndefinedAddress) throw FormatError("dataset has no storage allocated (never written)");
    info.offset = absolute(file, sb, p.data_address, "dataset storage");
  }
  if (!file.contains(info.offset, info.nbytes)) {
    throw FormatError("dataset storage [" + std::to_string(info.offset) + ", +" + std::to_string(info.nbytes) +
                      ") lies past the end of the file (" + std::to_string(file.size()) +
                      " bytes): the file is truncated");
  }
  return info;
}

}  // namespace nb360
