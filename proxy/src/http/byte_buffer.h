#pragma once
// A growable run of bytes with an inline append: the forwarding path writes the heads it sends
// into one and keeps the heads it parses in another. Unlike std::string there is no
// terminating NUL to maintain and no out-of-line call per append; the capacity is kept when
// it is cleared, so a connection's buffers stop growing after its first messages.

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace sticky::proxy {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {data_.get(), size_}; }

  void clear() { size_ = 0; }
  /// clear(), and give the memory back when more than `max_capacity` bytes are held: after an
  /// unusually large message, an idle connection should not keep a buffer that size.
  void clearAndShrink(size_t max_capacity) {
    size_ = 0;
    if (capacity_ <= max_capacity) return;
    data_.reset();
    capacity_ = 0;
  }

  void append(std::string_view s) {
    if (capacity_ - size_ < s.size()) reserve(size_ + s.size());
    if (!s.empty()) std::memcpy(data_.get() + size_, s.data(), s.size());
    size_ += s.size();
  }
  void push_back(char c) { append(std::string_view(&c, 1)); }

  /// Room for at least `n` bytes in all; growing moves the bytes (views into them go stale).
  void reserve(size_t n) {
    if (n <= capacity_) return;
    size_t capacity = capacity_ * 2 > n ? capacity_ * 2 : n;
    auto grown = std::make_unique_for_overwrite<char[]>(capacity);
    if (size_) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = capacity;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace sticky::proxy
