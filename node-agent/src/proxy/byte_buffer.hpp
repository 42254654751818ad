#pragma once

// Buffers of the ingress proxy (internal header). The proxy never holds more than a few of these
// per connection, and none while a connection is idle between messages, so memory stays flat
// however large the bodies and however many idle WebSockets.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace decloud::agent::proxy {

// Bytes received and not yet consumed, contiguous, growing on demand up to a limit.
class ByteBuffer {
  public:
    std::string_view Data() const { return {storage_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }
    std::size_t capacity() const { return capacity_; }

    // Room for at least `min` more bytes (moving data to the front or growing as needed), at most
    // `max_total` bytes held in all; returns the writable region (may be smaller than `min` only
    // when `max_total` caps it).
    std::pair<char*, std::size_t> Prepare(std::size_t min, std::size_t max_total) {
        if (capacity_ - end_ < min && begin_ > 0) {
            std::memmove(storage_.get(), storage_.get() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        if (capacity_ - end_ < min && capacity_ < max_total) {
            const auto wanted = std::min(max_total, std::max(capacity_ * 2, end_ + min));
            auto bigger = std::make_unique_for_overwrite<char[]>(wanted);
            if (end_ > begin_) std::memcpy(bigger.get(), storage_.get() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
            storage_ = std::move(bigger);
            capacity_ = wanted;
        }
        return {storage_.get() + end_, capacity_ - end_};
    }
    void Commit(std::size_t n) { end_ += n; }
    void Consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Gives memory back when empty (after a large upload, before waiting idle).
    void ReleaseIfEmptyAndAbove(std::size_t bytes) {
        if (empty() && capacity_ > bytes) {
            storage_.reset();
            capacity_ = 0;
        }
    }

  private:
    std::unique_ptr<char[]> storage_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

// Fixed-size blocks for moving bodies and WebSocket bytes, reused instead of freed (one thread).
class BlockPool {
  public:
    static constexpr std::size_t kBlockSize = 64 * 1024;

    class Block {
      public:
        Block() = default;
        Block(BlockPool* pool, std::unique_ptr<char[]> data)
            : pool_(pool), data_(std::move(data)) {}
        Block(Block&&) noexcept = default;
        Block& operator=(Block&& other) noexcept {
            Reset();
            pool_ = other.pool_;
            data_ = std::move(other.data_);
            return *this;
        }
        ~Block() { Reset(); }
        char* data() const { return data_.get(); }
        static constexpr std::size_t size() { return kBlockSize; }
        explicit operator bool() const { return data_ != nullptr; }
        void Reset() {
            if (data_ && pool_) pool_->Return(std::move(data_));
            data_.reset();
        }

      private:
        BlockPool* pool_ = nullptr;
        std::unique_ptr<char[]> data_;
    };

    Block Acquire() {
        if (free_.empty()) return Block(this, std::make_unique_for_overwrite<char[]>(kBlockSize));
        auto data = std::move(free_.back());
        free_.pop_back();
        return Block(this, std::move(data));
    }

  private:
    static constexpr std::size_t kMaxFree = 64;
    void Return(std::unique_ptr<char[]> data) {
        if (free_.size() < kMaxFree) free_.push_back(std::move(data));
    }
    std::vector<std::unique_ptr<char[]>> free_;
};

}  // namespace decloud::agent::proxy
