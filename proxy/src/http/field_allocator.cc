#include "http/field_allocator.h"

namespace sticky::proxy::detail {

FieldBlockPool::~FieldBlockPool() {
  for (size_t c = 0; c < kClasses; ++c) {
    while (Free* f = free_[c]) {
      free_[c] = f->next;
      ::operator delete(f);
    }
  }
}

void* FieldBlockPool::allocate(size_t bytes) {
  if (bytes == 0 || bytes > kMaxBlock) return ::operator new(bytes);
  size_t c = classOf(bytes);
  if (Free* f = free_[c]) {
    free_[c] = f->next;
    --count_[c];
    return f;
  }
  return ::operator new((c + 1) * kClassSize);
}

void FieldBlockPool::deallocate(void* p, size_t bytes) noexcept {
  if (!p) return;
  if (bytes == 0 || bytes > kMaxBlock) {
    ::operator delete(p);
    return;
  }
  size_t c = classOf(bytes);
  if (count_[c] >= kMaxFreePerClass) {
    ::operator delete(p);
    return;
  }
  free_[c] = new (p) Free{free_[c]};
  ++count_[c];
}

size_t FieldBlockPool::freeBlocks() const {
  size_t n = 0;
  for (size_t c = 0; c < kClasses; ++c) n += count_[c];
  return n;
}

}  // namespace sticky::proxy::detail
