#pragma once
// Live session count per endpoint id, for the local stick table (stick_table.cc): an
// open-addressing table of (id, count) atomics in blocks that double. Readers (get) take no
// lock. Writers call add() while holding one of the table's shard locks; reclaim() runs with
// every shard lock held, so it never races a writer, and readers detect a slot reclaimed under
// them by re-reading its id.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "routing/hash.h"
#include "routing/stick_table.h"

namespace sticky::proxy {

class EndpointCounters {
 public:
  EndpointCounters() : head_(new Block(64)) {}
  ~EndpointCounters() {
    Block* b = head_;
    while (b) {
      Block* next = b->next.load(std::memory_order_relaxed);
      delete b;
      b = next;
    }
  }
  EndpointCounters(const EndpointCounters&) = delete;
  EndpointCounters& operator=(const EndpointCounters&) = delete;

  // Caller holds a shard lock.
  void add(EndpointId id, int64_t delta) {
    Slot* slot = find(id);
    if (!slot) {
      std::lock_guard lock(insert_mu_);
      slot = find(id);
      if (!slot) slot = insert(id);
    }
    slot->count.fetch_add(delta, std::memory_order_relaxed);
  }

  uint64_t get(EndpointId id) const {
    while (true) {
      const Slot* slot = find(id);
      if (!slot) return 0;
      int64_t count = slot->count.load(std::memory_order_acquire);
      if (id == kEmpty || id == kTombstone || slot->id.load(std::memory_order_acquire) == id) {
        return count > 0 ? static_cast<uint64_t>(count) : 0;
      }
      // The slot was reclaimed (count 0) between the two reads: look again.
    }
  }

  bool hasReclaimable() const {
    for (const Block* b = head_; b; b = b->next.load(std::memory_order_acquire)) {
      for (size_t i = 0; i <= b->mask; ++i) {
        uint64_t id = b->slots[i].id.load(std::memory_order_relaxed);
        if (id != kEmpty && id != kTombstone &&
            b->slots[i].count.load(std::memory_order_relaxed) == 0) {
          return true;
        }
      }
    }
    return false;
  }

  // Caller holds every shard lock: no writer can hold a slot pointer.
  void reclaim() {
    std::lock_guard lock(insert_mu_);
    for (Block* b = head_; b; b = b->next.load(std::memory_order_acquire)) {
      for (size_t i = 0; i <= b->mask; ++i) {
        Slot& s = b->slots[i];
        uint64_t id = s.id.load(std::memory_order_relaxed);
        if (id != kEmpty && id != kTombstone && s.count.load(std::memory_order_relaxed) == 0) {
          s.id.store(kTombstone, std::memory_order_release);
        }
      }
    }
  }

 private:
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kTombstone = ~uint64_t{0};

  struct Slot {
    std::atomic<uint64_t> id{kEmpty};
    std::atomic<int64_t> count{0};
  };
  struct Block {
    explicit Block(size_t capacity) : mask(capacity - 1), slots(new Slot[capacity]) {}
    const size_t mask;
    std::unique_ptr<Slot[]> slots;
    size_t used = 0;  // non-empty slots (tombstones included); guarded by insert_mu_
    std::atomic<Block*> next{nullptr};
  };

  // Ids equal to the two markers get dedicated slots.
  const Slot* special(EndpointId id) const { return id == kEmpty ? &special_[0] : &special_[1]; }

  Slot* find(EndpointId id) const {
    if (id == kEmpty || id == kTombstone) return const_cast<Slot*>(special(id));
    const uint64_t h = hash::mix(id);
    for (Block* b = head_; b; b = b->next.load(std::memory_order_acquire)) {
      size_t i = h & b->mask;
      for (size_t n = 0; n <= b->mask; ++n, i = (i + 1) & b->mask) {
        uint64_t s = b->slots[i].id.load(std::memory_order_acquire);
        if (s == id) return &b->slots[i];
        if (s == kEmpty) break;
      }
    }
    return nullptr;
  }

  // insert_mu_ held and `id` known absent.
  Slot* insert(EndpointId id) {
    const uint64_t h = hash::mix(id);
    for (Block* b = head_;; b = b->next.load(std::memory_order_acquire)) {
      size_t i = h & b->mask;
      for (size_t n = 0; n <= b->mask; ++n, i = (i + 1) & b->mask) {
        Slot& s = b->slots[i];
        uint64_t cur = s.id.load(std::memory_order_relaxed);
        if (cur == kTombstone) {  // reclaimed with count 0; reuse it
          s.id.store(id, std::memory_order_release);
          return &s;
        }
        if (cur == kEmpty) {
          if ((b->used + 1) * 4 > (b->mask + 1) * 3) break;  // keep probe chains short
          ++b->used;
          s.id.store(id, std::memory_order_release);
          return &s;
        }
      }
      if (!b->next.load(std::memory_order_relaxed)) {
        b->next.store(new Block((b->mask + 1) * 2), std::memory_order_release);
      }
    }
  }

  Block* head_;
  std::mutex insert_mu_;
  mutable Slot special_[2];
};

}  // namespace sticky::proxy
