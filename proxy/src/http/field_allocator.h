#pragma once
// The allocator of the header fields the forwarding path parses. Every request and response
// head allocates one block per field and frees them all when the next head is parsed; on a
// worker thread these blocks come and go in the same few sizes, so they are kept on per-thread
// free lists by size class instead of going back to malloc each time.

#include <cstddef>
#include <new>

namespace sticky::proxy {

namespace detail {

/// Free lists of small blocks (up to kMaxBlock bytes, in kClassSize steps), one set per thread.
/// Larger blocks, and blocks beyond kMaxFreePerClass on a list, go to operator new/delete.
class FieldBlockPool {
 public:
  static constexpr size_t kClassSize = 32;
  static constexpr size_t kMaxBlock = 512;
  static constexpr size_t kMaxFreePerClass = 1024;

  FieldBlockPool() = default;
  FieldBlockPool(const FieldBlockPool&) = delete;
  FieldBlockPool& operator=(const FieldBlockPool&) = delete;
  ~FieldBlockPool();

  static FieldBlockPool& local() {
    thread_local FieldBlockPool pool;
    return pool;
  }

  void* allocate(size_t bytes);
  void deallocate(void* p, size_t bytes) noexcept;
  /// Blocks on this thread's free lists (for tests).
  size_t freeBlocks() const;

 private:
  struct Free {
    Free* next;
  };
  static constexpr size_t kClasses = kMaxBlock / kClassSize;
  static size_t classOf(size_t bytes) { return (bytes + kClassSize - 1) / kClassSize - 1; }

  Free* free_[kClasses] = {};
  size_t count_[kClasses] = {};
};

}  // namespace detail

/// Stateless allocator over this thread's FieldBlockPool. Any instance frees what any other
/// allocated, on any thread (a block freed elsewhere joins that thread's lists).
template <class T>
class FieldAllocator {
 public:
  using value_type = T;

  FieldAllocator() = default;
  template <class U>
  FieldAllocator(const FieldAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    return static_cast<T*>(detail::FieldBlockPool::local().allocate(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept {
    detail::FieldBlockPool::local().deallocate(p, n * sizeof(T));
  }

  template <class U>
  bool operator==(const FieldAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace sticky::proxy
