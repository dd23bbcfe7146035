// LocalStickTable: the in-process stick table.
//
// Layout. The table is split into shards (default 16, a power of two); the key's 64-bit hash
// picks the shard (bits 40..) and, within it, the bucket (low 32 bits). Each shard has one mutex,
// a chained hash table of bucket heads, and an intrusive doubly linked LRU list. An entry is ONE
// heap allocation holding the node and the key bytes right behind it:
//
//   struct Node {                 offset
//     Node* lru_prev, *lru_next;  0, 8    LRU list (front = most recently used)
//     Node* chain;                16      next node in the same bucket
//     EndpointId endpoint;        24
//     int64_t last_used;          32      steady_clock ticks (ns) of the last hit
//     uint32_t synced;            40      100 ms step when the shared store last confirmed it
//     uint32_t pending;           44      1 + its index in the shard's `pending`, or 0
//     uint32_t hash;              48      low 32 bits of the key hash (bucket index, rehash)
//     uint32_t key_len;           52
//     char key[key_len];          56      key bytes, not NUL-terminated
//   };
//
// So an entry costs 56 + key bytes, rounded up by malloc to its 16-byte chunk size (with 8 bytes
// of chunk header), plus one 8-byte bucket pointer per 0.5..1 entries (buckets double when a
// shard's entries exceed its bucket count). No std::string, no std::list node, no map node.
// MEASURED (test "memory per entry is bounded", 200k keys of 13 bytes, 16 shards, glibc
// mallinfo2 heap growth): 90.5-90.8 bytes/entry, i.e. ~78 + key bytes (budget: 100 + key).
// (That was with a 48-byte node; `synced` made it 56, which a 13-byte key's 80-byte chunk
// absorbs: keys of 17..24 bytes pay 16 more.)
//
// Shared store. With a shared table (Redis) the entry is a cache of the store's: `synced` says
// when the store last confirmed it (in 100 ms steps, modulo 2^32: 13 years, so differences are
// exact; a step's rounding makes an entry due at most 100 ms early, never late).
// takeRefreshes() hands out the entries used since then and confirmed at least `min_age` ago (so
// each key costs the store one write per min_age at most, never one per request);
// markUnsynced() makes an entry due at once. The entries used since their confirmation are kept
// in the shard's `pending` vector (the node knows its slot, so removal is O(1)), so a refresh
// round costs the entries used lately, not the table: a table of keys placed once and never
// used again costs nothing. Tracking starts with the first takeRefreshes() call (which walks
// the recent entries once): without a store nothing is tracked and `pending` stays empty.
//
// Time. Idle TTL: an entry is expired when now - last_used >= ttl. Every hit moves the entry to
// the front of its shard's LRU list and sets last_used = max(now, front's last_used), so each
// list stays sorted by last_used even if callers' clocks interleave slightly; sweep() therefore
// walks from the back and stops at the first live entry. Lookups never return an expired entry
// (they drop it on sight and count an expiration).
//
// Cap. size() is one atomic counter, exact. After an insert, while size() > max_sessions the
// inserting shard evicts its own least recently used entry (never the one just inserted); if
// that shard has nothing else, other shards are visited in turn. So the cap holds exactly once
// inserts return (concurrent inserts may briefly undershoot it by one each), LRU order is exact
// within a shard and approximate across shards (the victim is the oldest of ~1/shards of the
// table). A table made with 1 shard is an exact global LRU. setLimits() with a lower cap evicts
// the globally oldest entries (comparing shard tails) until the cap holds.
//
// Per-endpoint session counts (sessionsOf) live in EndpointCounters (endpoint_counters.h): an
// open-addressing table of (id, count) atomics read without locks; every change is made under a
// shard lock.

#include "routing/stick_table.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <limits>
#include <mutex>
#include <new>
#include <vector>

#include "routing/endpoint_counters.h"
#include "routing/hash.h"

namespace sticky::proxy {

std::optional<StickTable::Lookup> StickTable::repin(std::string_view key, EndpointId from,
                                                    TimePoint now, const PlacementFn& placement) {
  // Generic (not atomic) fallback for tables that do not override it.
  auto current = find(key, now);
  if (current && *current != from) return Lookup{*current, false};
  auto chosen = placement.place(key);
  if (!chosen) {
    if (current) erase(key);
    return std::nullopt;
  }
  pin(key, *chosen, now);
  return Lookup{*chosen, true};
}

namespace {

int64_t ticks(TimePoint t) {
  return t.time_since_epoch().count();
}

struct Node {
  Node* lru_prev;
  Node* lru_next;
  Node* chain;
  EndpointId endpoint;
  int64_t last_used;
  uint32_t synced;
  uint32_t pending;
  uint32_t hash;
  uint32_t key_len;

  char* keyData() { return reinterpret_cast<char*>(this + 1); }
  std::string_view key() { return {keyData(), key_len}; }
};
static_assert(sizeof(Node) == 56, "see the layout comment at the top of this file");

struct alignas(64) Shard {
  std::mutex mu;
  // Everything below is guarded by mu.
  Node lru{&lru, &lru, nullptr, 0, 0, 0, 0, 0, 0};  // sentinel: lru.lru_next is the most recent
  Node** buckets = nullptr;
  size_t bucket_mask = 0;
  size_t count = 0;
  std::vector<Node*> pending;  // used since confirmed, or never confirmed (see the top)

  bool empty() const { return lru.lru_next == &lru; }
  Node* oldest() { return empty() ? nullptr : lru.lru_prev; }
  Node* newest() { return empty() ? nullptr : lru.lru_next; }
};

class LocalStickTable final : public StickTable {
 public:
  LocalStickTable(std::chrono::milliseconds ttl, uint64_t max_sessions, size_t shards)
      : shard_count_(std::bit_ceil(std::max<size_t>(shards, 1))), shards_(new Shard[shard_count_]) {
    setTtl(ttl);
    max_sessions_.store(std::max<uint64_t>(max_sessions, 1), std::memory_order_relaxed);
    for (size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      s.bucket_mask = kInitialBuckets - 1;
      s.buckets = new Node*[kInitialBuckets]();
    }
  }

  ~LocalStickTable() override {
    for (size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      Node* n = s.lru.lru_next;
      while (n != &s.lru) {
        Node* next = n->lru_next;
        freeNode(n);
        n = next;
      }
      delete[] s.buckets;
    }
  }

  std::optional<Lookup> lookupOrPlace(std::string_view key, TimePoint now,
                                      const PlacementFn& placement) override {
    const uint64_t h = hash::bytes(key);
    const size_t index = shardIndex(h);
    Shard& s = shards_[index];
    bool over = false;
    Lookup result;
    {
      std::lock_guard lock(s.mu);
      if (Node* n = findLive(s, static_cast<uint32_t>(h), key, ticks(now))) {
        touch(s, n, ticks(now));
        return Lookup{n->endpoint, false};
      }
      auto chosen = placement.place(key);
      if (!chosen) return std::nullopt;
      Node* n = insertNode(s, static_cast<uint32_t>(h), key, *chosen, ticks(now));
      over = evictOwn(s, n);
      result = Lookup{*chosen, true};
    }
    if (over) evictOthers(index);
    return result;
  }

  std::optional<EndpointId> find(std::string_view key, TimePoint now) override {
    const uint64_t h = hash::bytes(key);
    Shard& s = shards_[shardIndex(h)];
    std::lock_guard lock(s.mu);
    Node* n = findLive(s, static_cast<uint32_t>(h), key, ticks(now));
    if (!n) return std::nullopt;
    touch(s, n, ticks(now));
    return n->endpoint;
  }

  std::optional<Lookup> repin(std::string_view key, EndpointId from, TimePoint now,
                              const PlacementFn& placement) override {
    const uint64_t h = hash::bytes(key);
    const size_t index = shardIndex(h);
    Shard& s = shards_[index];
    bool over = false;
    Lookup result;
    {
      std::lock_guard lock(s.mu);
      Node* n = findLive(s, static_cast<uint32_t>(h), key, ticks(now));
      if (n && n->endpoint != from) {
        touch(s, n, ticks(now));
        return Lookup{n->endpoint, false};
      }
      auto chosen = placement.place(key);
      if (!chosen) {
        if (n) removeNode(s, n);
        return std::nullopt;
      }
      if (n) {
        setEndpoint(n, *chosen);
        touch(s, n, ticks(now));
      } else {
        n = insertNode(s, static_cast<uint32_t>(h), key, *chosen, ticks(now));
        over = evictOwn(s, n);
      }
      result = Lookup{*chosen, true};
    }
    if (over) evictOthers(index);
    return result;
  }

  void pin(std::string_view key, EndpointId endpoint, TimePoint now) override {
    const uint64_t h = hash::bytes(key);
    const size_t index = shardIndex(h);
    Shard& s = shards_[index];
    bool over = false;
    {
      std::lock_guard lock(s.mu);
      if (Node* n = findLive(s, static_cast<uint32_t>(h), key, ticks(now))) {
        setEndpoint(n, endpoint);
        touch(s, n, ticks(now));
        setSynced(n, syncStep(ticks(now)));
        unpend(s, n);
        return;
      }
      Node* n = insertNode(s, static_cast<uint32_t>(h), key, endpoint, ticks(now));
      over = evictOwn(s, n);
    }
    if (over) evictOthers(index);
  }

  bool erase(std::string_view key) override {
    const uint64_t h = hash::bytes(key);
    Shard& s = shards_[shardIndex(h)];
    std::lock_guard lock(s.mu);
    Node* n = findNode(s, static_cast<uint32_t>(h), key);
    if (!n) return false;
    removeNode(s, n);
    return true;
  }

  size_t eraseEndpoint(EndpointId endpoint) override {
    size_t removed = 0;
    for (size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      Node* n = s.lru.lru_next;
      while (n != &s.lru) {
        Node* next = n->lru_next;
        if (n->endpoint == endpoint) {
          removeNode(s, n);
          ++removed;
        }
        n = next;
      }
    }
    return removed;
  }

  size_t sweep(TimePoint now) override {
    size_t removed = 0;
    const int64_t t = ticks(now);
    for (size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      while (Node* n = s.oldest()) {
        if (!expired(n, t)) break;  // the list is sorted by last_used
        removeNode(s, n);
        ++removed;
      }
    }
    expirations_.fetch_add(removed, std::memory_order_relaxed);
    if (counters_.hasReclaimable()) {
      // Free the counter slots of endpoints that no longer have sessions. Every shard lock is
      // held (in index order), so no writer is between finding a slot and updating it.
      std::vector<std::unique_lock<std::mutex>> locks;
      locks.reserve(shard_count_);
      for (size_t i = 0; i < shard_count_; ++i) locks.emplace_back(shards_[i].mu);
      counters_.reclaim();
    }
    return removed;
  }

  void setLimits(std::chrono::milliseconds ttl, uint64_t max_sessions) override {
    setTtl(ttl);
    max_sessions_.store(std::max<uint64_t>(max_sessions, 1), std::memory_order_relaxed);
    shrinkToCap();
  }

  size_t size() const override { return size_.load(std::memory_order_relaxed); }

  uint64_t sessionsOf(EndpointId endpoint) const override { return counters_.get(endpoint); }

  std::vector<SessionEntry> dump(size_t limit, TimePoint now) const override {
    std::vector<SessionEntry> out;
    const int64_t t = ticks(now);
    for (size_t i = 0; i < shard_count_ && out.size() < limit; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      for (Node* n = s.lru.lru_next; n != &s.lru && out.size() < limit; n = n->lru_next) {
        if (expired(n, t)) break;  // everything after it is older
        auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::nanoseconds(std::max<int64_t>(t - n->last_used, 0)));
        out.push_back(SessionEntry{std::string(n->key()), n->endpoint, idle});
      }
    }
    return out;
  }

  std::vector<SessionEntry> takeRefreshes(TimePoint now, std::chrono::nanoseconds min_age,
                                          size_t limit) override {
    std::vector<SessionEntry> out;
    const int64_t t = ticks(now);
    const uint32_t step = syncStep(t);
    const auto age_steps = static_cast<uint32_t>(std::min<int64_t>(
        (min_age.count() + kSyncStepNs - 1) / kSyncStepNs, std::numeric_limits<uint32_t>::max()));
    if (!tracking_.exchange(true)) enlistRecent(t, min_age, /*unsync=*/false);
    for (size_t i = 0; i < shard_count_ && out.size() < limit; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      for (size_t at = 0; at < s.pending.size() && out.size() < limit;) {
        Node* n = s.pending[at];
        const bool due = n->synced == kNeverSynced || step - n->synced >= age_steps;
        // Not due yet: stays. Expired: stays until a lookup or the sweep removes it.
        if (!due || expired(n, t)) {
          ++at;
          continue;
        }
        setSynced(n, step);
        auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::nanoseconds(std::max<int64_t>(t - n->last_used, 0)));
        out.push_back(SessionEntry{std::string(n->key()), n->endpoint, idle});
        unpend(s, n);  // the last one moves into slot `at`
      }
    }
    return out;
  }

  void markUnsynced(std::string_view key) override {
    const uint64_t h = hash::bytes(key);
    Shard& s = shards_[shardIndex(h)];
    std::lock_guard lock(s.mu);
    if (Node* n = findNode(s, static_cast<uint32_t>(h), key)) {
      setSynced(n, kNeverSynced);
      pend(s, n);
    }
  }

  void markAllUnsynced(TimePoint now, std::chrono::nanoseconds min_age) override {
    tracking_.store(true);
    enlistRecent(ticks(now), min_age, /*unsync=*/true);
  }

  StickTableCounters counters() const override {
    return {expirations_.load(std::memory_order_relaxed),
            evictions_.load(std::memory_order_relaxed), unsynced_.load(std::memory_order_relaxed)};
  }

 private:
  static constexpr size_t kInitialBuckets = 16;
  static constexpr uint32_t kNeverSynced = 0;
  static constexpr int64_t kSyncStepNs = 100'000'000;

  // `t`'s 100 ms step, modulo 2^32, never kNeverSynced.
  static uint32_t syncStep(int64_t t) {
    auto step = static_cast<uint32_t>(static_cast<uint64_t>(t / kSyncStepNs));
    return step == kNeverSynced ? 1 : step;
  }

  // Sets when the store last confirmed `n` (kNeverSynced: not since it was placed locally or
  // marked), keeping the count of unconfirmed entries. Under n's shard lock.
  void setSynced(Node* n, uint32_t step) {
    if (n->synced != kNeverSynced && step == kNeverSynced)
      unsynced_.fetch_add(1, std::memory_order_relaxed);
    else if (n->synced == kNeverSynced && step != kNeverSynced)
      unsynced_.fetch_sub(1, std::memory_order_relaxed);
    n->synced = step;
  }

  static void pend(Shard& s, Node* n) {
    if (n->pending != 0) return;
    s.pending.push_back(n);
    n->pending = static_cast<uint32_t>(s.pending.size());
  }

  static void unpend(Shard& s, Node* n) {
    if (n->pending == 0) return;
    Node* last = s.pending.back();
    s.pending[n->pending - 1] = last;
    last->pending = n->pending;
    s.pending.pop_back();
    n->pending = 0;
  }

  // Puts the entries used within min_age + two refresh rounds (those a refresh could still be
  // owed) in `pending`: all of them, marked never confirmed, if `unsync`; else those used in a
  // later 100 ms step than their confirmation (a use in the same step goes unseen: its Redis
  // timer then ends at most 100 ms early, well inside the margin).
  void enlistRecent(int64_t t, std::chrono::nanoseconds min_age, bool unsync) {
    const int64_t horizon =
        t - min_age.count() - 2 * std::chrono::nanoseconds(kRefreshRound).count();
    for (size_t i = 0; i < shard_count_; ++i) {
      Shard& s = shards_[i];
      std::lock_guard lock(s.mu);
      for (Node* n = s.lru.lru_next; n != &s.lru; n = n->lru_next) {
        if (n->last_used < horizon) break;  // the list is sorted by last_used
        if (unsync) {
          setSynced(n, kNeverSynced);
        } else if (n->synced != kNeverSynced &&
                   static_cast<int32_t>(syncStep(n->last_used) - n->synced) <= 0) {
          continue;
        }
        pend(s, n);
      }
    }
  }

  size_t shardIndex(uint64_t h) const { return (h >> 40) & (shard_count_ - 1); }

  void setTtl(std::chrono::milliseconds ttl) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
    ttl_ns_.store(std::max<int64_t>(ns, 1), std::memory_order_relaxed);
  }

  bool expired(const Node* n, int64_t now) const {
    return now - n->last_used >= ttl_ns_.load(std::memory_order_relaxed);
  }

  static Node* findNode(Shard& s, uint32_t h, std::string_view key) {
    for (Node* n = s.buckets[h & s.bucket_mask]; n; n = n->chain) {
      if (n->hash == h && n->key() == key) return n;
    }
    return nullptr;
  }

  // The entry for `key` if present and not expired; an expired one is removed on sight.
  Node* findLive(Shard& s, uint32_t h, std::string_view key, int64_t now) {
    Node* n = findNode(s, h, key);
    if (n && expired(n, now)) {
      removeNode(s, n);
      expirations_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    return n;
  }

  static void lruUnlink(Node* n) {
    n->lru_prev->lru_next = n->lru_next;
    n->lru_next->lru_prev = n->lru_prev;
  }

  static void lruPushFront(Shard& s, Node* n) {
    n->lru_prev = &s.lru;
    n->lru_next = s.lru.lru_next;
    // The list is circular around the shard's sentinel: lru_next is never null (the analyzer
    // cannot see the invariant the constructor sets up).
    s.lru.lru_next->lru_prev = n;  // NOLINT(clang-analyzer-core.NullDereference)
    s.lru.lru_next = n;
  }

  void touch(Shard& s, Node* n, int64_t now) {
    Node* front = s.newest();
    n->last_used = std::max({now, n->last_used, front ? front->last_used : now});
    if (front != n) {
      lruUnlink(n);
      lruPushFront(s, n);
    }
    if (n->pending == 0 && tracking_.load(std::memory_order_relaxed)) pend(s, n);
  }

  void setEndpoint(Node* n, EndpointId endpoint) {
    if (n->endpoint == endpoint) return;
    counters_.add(n->endpoint, -1);
    counters_.add(endpoint, 1);
    n->endpoint = endpoint;
  }

  Node* insertNode(Shard& s, uint32_t h, std::string_view key, EndpointId endpoint, int64_t now) {
    void* mem = ::operator new(sizeof(Node) + key.size());
    Node* n = new (mem) Node{nullptr,  nullptr, nullptr,
                             endpoint, now,     syncStep(now),
                             0,        h,       static_cast<uint32_t>(key.size())};
    std::memcpy(n->keyData(), key.data(), key.size());
    if (Node* front = s.newest()) n->last_used = std::max(now, front->last_used);
    lruPushFront(s, n);
    Node*& bucket = s.buckets[h & s.bucket_mask];
    n->chain = bucket;
    bucket = n;
    ++s.count;
    size_.fetch_add(1, std::memory_order_relaxed);
    counters_.add(endpoint, 1);
    if (s.count > s.bucket_mask + 1) grow(s);
    return n;
  }

  static void grow(Shard& s) {
    const size_t new_count = (s.bucket_mask + 1) * 2;
    Node** fresh = new (std::nothrow) Node*[new_count]();
    if (!fresh) return;  // keep the longer chains rather than fail the request
    const size_t new_mask = new_count - 1;
    for (size_t i = 0; i <= s.bucket_mask; ++i) {
      Node* n = s.buckets[i];
      while (n) {
        Node* next = n->chain;
        Node*& bucket = fresh[n->hash & new_mask];
        n->chain = bucket;
        bucket = n;
        n = next;
      }
    }
    delete[] s.buckets;
    s.buckets = fresh;
    s.bucket_mask = new_mask;
  }

  void removeNode(Shard& s, Node* n) {
    Node** link = &s.buckets[n->hash & s.bucket_mask];
    while (*link != n) link = &(*link)->chain;
    *link = n->chain;
    lruUnlink(n);
    unpend(s, n);
    if (n->synced == kNeverSynced) unsynced_.fetch_sub(1, std::memory_order_relaxed);
    --s.count;
    size_.fetch_sub(1, std::memory_order_relaxed);
    counters_.add(n->endpoint, -1);
    freeNode(n);
  }

  static void freeNode(Node* n) {
    n->~Node();
    ::operator delete(static_cast<void*>(n));
  }

  bool overCap() const {
    return size_.load(std::memory_order_relaxed) > max_sessions_.load(std::memory_order_relaxed);
  }

  // Evicts this shard's least recently used entries (never `keep`) while over the cap. Returns
  // true if still over the cap (this shard had nothing else to give).
  bool evictOwn(Shard& s, Node* keep) {
    while (overCap()) {
      Node* victim = s.oldest();
      if (!victim || victim == keep) return true;
      removeNode(s, victim);
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
    return false;
  }

  // Called without any shard lock held, after an insert into shard `skip` left us over the cap.
  void evictOthers(size_t skip) {
    for (size_t step = 1; step < shard_count_ && overCap(); ++step) {
      Shard& s = shards_[(skip + step) & (shard_count_ - 1)];
      std::lock_guard lock(s.mu);
      while (overCap()) {
        Node* victim = s.oldest();
        if (!victim) break;
        removeNode(s, victim);
        evictions_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  // Evicts the globally least recently used entries until the cap holds (setLimits).
  void shrinkToCap() {
    while (overCap()) {
      size_t best = shard_count_;
      int64_t best_time = 0;
      for (size_t i = 0; i < shard_count_; ++i) {
        std::lock_guard lock(shards_[i].mu);
        if (Node* n = shards_[i].oldest();
            n && (best == shard_count_ || n->last_used < best_time)) {
          best = i;
          best_time = n->last_used;
        }
      }
      if (best == shard_count_) return;
      Shard& s = shards_[best];
      std::lock_guard lock(s.mu);
      if (Node* victim = s.oldest()) {
        removeNode(s, victim);
        evictions_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  const size_t shard_count_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<int64_t> ttl_ns_{0};
  std::atomic<uint64_t> max_sessions_{1};
  std::atomic<size_t> size_{0};
  std::atomic<uint64_t> expirations_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<bool> tracking_{false};  // `pending` is kept (see the top)
  std::atomic<uint64_t> unsynced_{0};  // entries with synced == kNeverSynced
  EndpointCounters counters_;
};

}  // namespace

std::unique_ptr<StickTable> makeLocalStickTable(std::chrono::milliseconds ttl,
                                                uint64_t max_sessions) {
  return makeLocalStickTable(ttl, max_sessions, 16);
}

std::unique_ptr<StickTable> makeLocalStickTable(std::chrono::milliseconds ttl,
                                                uint64_t max_sessions, size_t shards) {
  return std::make_unique<LocalStickTable>(ttl, max_sessions, std::min<size_t>(shards, 1024));
}

}  // namespace sticky::proxy
