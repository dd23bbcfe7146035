#include "http/field_allocator.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/headers.h"

namespace sticky::proxy {
namespace {

using detail::FieldBlockPool;

TEST_CASE("field blocks are reused by size class and large ones bypass the pool") {
  FieldAllocator<char> alloc;
  auto& pool = FieldBlockPool::local();
  size_t before = pool.freeBlocks();

  char* a = alloc.allocate(40);  // class 33..64
  alloc.deallocate(a, 40);
  CHECK(pool.freeBlocks() == before + 1);
  char* b = alloc.allocate(64);  // same class: the same block back
  CHECK(b == a);
  CHECK(pool.freeBlocks() == before);
  alloc.deallocate(b, 64);

  char* big = alloc.allocate(FieldBlockPool::kMaxBlock + 1);
  alloc.deallocate(big, FieldBlockPool::kMaxBlock + 1);
  CHECK(pool.freeBlocks() == before + 1);  // only b's block is kept
}

TEST_CASE("a free list keeps at most kMaxFreePerClass blocks") {
  FieldAllocator<char> alloc;
  auto& pool = FieldBlockPool::local();
  std::vector<char*> blocks;
  for (size_t i = 0; i < FieldBlockPool::kMaxFreePerClass + 10; ++i)
    blocks.push_back(alloc.allocate(200));
  size_t before = pool.freeBlocks();
  for (char* p : blocks) alloc.deallocate(p, 200);
  CHECK(pool.freeBlocks() - before <= FieldBlockPool::kMaxFreePerClass);
}

TEST_CASE("HttpFields keep their values through the pool, and another thread may free them") {
  std::string long_value(300, 'v');
  auto fields = std::make_unique<HttpFields>();
  for (int i = 0; i < 50; ++i) fields->insert("X-Field-" + std::to_string(i), long_value);
  fields->set("X-Field-7", "short");
  CHECK((*fields)["X-Field-7"] == "short");
  CHECK((*fields)["X-Field-49"] == long_value);
  std::thread([f = std::move(fields)]() mutable { f.reset(); }).join();
  // Allocations on this thread still work after blocks went to the other thread's lists.
  HttpFields again;
  again.insert("Client-Id", "42");
  CHECK(again["client-id"] == "42");
}

}  // namespace
}  // namespace sticky::proxy
