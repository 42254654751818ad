// The marketplace's pure rules: filter validation, opaque cursors bound to their query, uptime
// in basis points, free points at a tier, hourly prices, profile and review validation.

#include <gtest/gtest.h>

#include <cmath>

#include "orchestrator/domain/marketplace.hpp"

namespace decloud::orchestrator::domain {
namespace {

constexpr const char* kNodeId = "2f1c1a3e-8a8b-4d7a-9c55-0a9e2b7c1d11";

bool Rejected(const MarketFilter& f, std::string_view fragment) {
    const auto st = Validate(f);
    if (st) return false;
    EXPECT_EQ(st.error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_NE(st.error().message.find(fragment), std::string::npos) << st.error().message;
    return true;
}

TEST(MarketFilterTest, AcceptsTheDefaultsAndATypicalQuery) {
    EXPECT_TRUE(Validate(MarketFilter{}));
    MarketFilter f;
    f.tags_all = {"ssd", "eu:gdpr"};
    f.tags_any = {"nvme", "10g"};
    f.region = "eu-west";
    f.min_price = 10;
    f.max_price = 10;
    f.has_gpu = true;
    f.gpu_vendor = "NVIDIA";
    f.gpu_model = "RTX 4090";
    f.min_gpu_count = 2;
    f.min_uptime_bp = 9950;
    f.min_free_points = 400;
    f.behind_cgnat = false;
    f.limit = 100;
    EXPECT_TRUE(Validate(f));
}

TEST(MarketFilterTest, RejectsEachBadFilterWithItsName) {
    MarketFilter f;
    f.min_price = 11;
    f.max_price = 10;
    EXPECT_TRUE(Rejected(f, "minPrice"));
    f = {};
    f.max_price = kMaxPricePerPoint + 1;
    EXPECT_TRUE(Rejected(f, "maxPrice"));
    f = {};
    f.tags_all.assign(kMaxMarketTags + 1, "x");
    EXPECT_TRUE(Rejected(f, "tagsAll"));
    f = {};
    f.tags_any = {"bad tag"};
    EXPECT_TRUE(Rejected(f, "tagsAny"));
    f = {};
    f.tags_any = {""};
    EXPECT_TRUE(Rejected(f, "tagsAny"));
    f = {};
    f.region = "EU West";
    EXPECT_TRUE(Rejected(f, "region"));
    f = {};
    f.min_uptime_bp = 10001;
    EXPECT_TRUE(Rejected(f, "minUptime"));
    f = {};
    f.limit = 0;
    EXPECT_TRUE(Rejected(f, "limit"));
    f.limit = kMaxMarketPageSize + 1;
    EXPECT_TRUE(Rejected(f, "limit"));
    f = {};
    f.vm_cores = 0;
    EXPECT_TRUE(Rejected(f, "cores"));
    f = {};
    f.has_gpu = false;
    f.gpu_vendor = "amd";
    EXPECT_TRUE(Rejected(f, "gpu=false"));
    f = {};
    f.gpu_model = std::string("a\x01", 2);
    EXPECT_TRUE(Rejected(f, "gpuModel"));
    f = {};
    f.min_free_memory_mib = std::uint64_t{1} << 50;
    EXPECT_TRUE(Rejected(f, "too large"));
}

TEST(MarketSortTest, NamesRoundTripAndUnknownIsRefused) {
    for (const auto s : {MarketSort::kPrice, MarketSort::kUptime, MarketSort::kFreeCapacity,
                         MarketSort::kComputePoints})
        EXPECT_EQ(ParseMarketSort(ToString(s)), s);
    EXPECT_FALSE(ParseMarketSort("cheapest"));
    EXPECT_FALSE(ParseMarketSort(""));
}

TEST(MarketCursorTest, RoundTripsForItsOwnQuery) {
    MarketFilter f;
    f.sort = MarketSort::kUptime;
    f.descending = true;
    f.region = "eu-west";
    const MarketCursor c{MarketSort::kUptime, true, 9876, kNodeId, QueryHash(f)};
    const auto text = EncodeCursor(c);
    // URL-safe without escaping.
    EXPECT_EQ(
        text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos);
    auto back = DecodeCursor(text, f);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->key, 9876);
    EXPECT_EQ(back->node_id, kNodeId);
    // The limit is not part of the query: a client may change its page size.
    f.limit = 7;
    EXPECT_TRUE(DecodeCursor(text, f));
}

TEST(MarketCursorTest, RefusesACursorOfAnotherQuery) {
    MarketFilter f;
    const auto text = EncodeCursor({MarketSort::kPrice, false, 5, kNodeId, QueryHash(f)});
    auto other = f;
    other.region = "us-east";
    EXPECT_FALSE(DecodeCursor(text, other));
    other = f;
    other.sort = MarketSort::kComputePoints;
    EXPECT_FALSE(DecodeCursor(text, other));
    other = f;
    other.descending = true;
    EXPECT_FALSE(DecodeCursor(text, other));
    other = f;
    other.tags_all = {"gpu"};
    EXPECT_FALSE(DecodeCursor(text, other));
    // Lists are hashed with separators: moving a tag between lists is another query.
    MarketFilter a, b;
    a.tags_all = {"x"};
    b.tags_any = {"x"};
    EXPECT_NE(QueryHash(a), QueryHash(b));
}

TEST(MarketCursorTest, RefusesTamperedText) {
    MarketFilter f;
    const auto text = EncodeCursor({MarketSort::kPrice, false, 5, kNodeId, QueryHash(f)});
    EXPECT_FALSE(DecodeCursor("", f));
    EXPECT_FALSE(DecodeCursor("!!!!", f));
    EXPECT_FALSE(DecodeCursor(text + "A", f));
    EXPECT_FALSE(DecodeCursor(text.substr(0, text.size() - 3), f));
    EXPECT_FALSE(DecodeCursor(std::string(600, 'A'), f));
    // Every single-character change is refused (the check covers every field).
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto changed = text;
        changed[i] = changed[i] == 'A' ? 'B' : 'A';
        EXPECT_FALSE(DecodeCursor(changed, f)) << "position " << i;
    }
    const auto err = DecodeCursor("e30", f);  // "{}"
    ASSERT_FALSE(err);
    EXPECT_EQ(err.error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_NE(err.error().message.find("cursor"), std::string::npos);
}

TEST(UptimeBasisPointsTest, RoundsDownAndClamps) {
    EXPECT_EQ(UptimeBasisPoints(0.95), 9500u);
    EXPECT_EQ(UptimeBasisPoints(0.94999), 9499u);
    EXPECT_EQ(UptimeBasisPoints(1.2), 10000u);
    EXPECT_EQ(UptimeBasisPoints(-0.1), 0u);
    EXPECT_EQ(UptimeBasisPoints(std::nan("")), 0u);
}

TEST(RawPointsForTest, ConvertsPointsAtATierToRawPoints) {
    EXPECT_EQ(RawPointsFor(300, QualityTier::kGuaranteed), 300u);
    EXPECT_EQ(RawPointsFor(300, QualityTier::kStandard), 200u);  // 300 x 2/3
    EXPECT_EQ(RawPointsFor(301, QualityTier::kStandard), 201u);  // rounded up
    EXPECT_EQ(RawPointsFor(300, QualityTier::kBalanced), 150u);
    EXPECT_EQ(RawPointsFor(300, QualityTier::kBurstable), 75u);
}

TEST(HourlyPriceTest, IsPointsConsumedTimesPrice) {
    // 4 cores, 400 points: 100 points per core; 2 cores at guaranteed = 200 points.
    EXPECT_EQ(HourlyPrice(2, QualityTier::kGuaranteed, 400, 4, 7), 1400u);
    EXPECT_EQ(HourlyPrice(2, QualityTier::kBurstable, 400, 4, 7), 50u * 7);
    EXPECT_EQ(HourlyPrice(2, QualityTier::kGuaranteed, 400, 0, 7), UINT64_MAX);
    EXPECT_EQ(HourlyPrice(1024, QualityTier::kGuaranteed, UINT64_MAX / 2, 1, 1000), UINT64_MAX);
}

TEST(NodeProfileTest, ValidatesLengthsAndCharacters) {
    NodeProfile p;
    p.display_name = "Zürich rack 7 ⚡";
    p.description = "Two EPYC boxes.\nFibre uplink.";
    p.tags = {"ssd", "eu:ch"};
    p.price_per_point_micro_usdc = 12;
    EXPECT_TRUE(Validate(p));

    auto bad = p;
    bad.display_name = "";
    EXPECT_FALSE(Validate(bad));
    bad.display_name = std::string(65, 'a');
    EXPECT_FALSE(Validate(bad));
    bad.display_name = std::string(64, 'a');
    EXPECT_TRUE(Validate(bad));
    // Characters, not bytes: 64 two-byte characters fit.
    bad.display_name.clear();
    for (int i = 0; i < 64; ++i) bad.display_name += "é";
    EXPECT_TRUE(Validate(bad));
    bad.display_name = "tab\there";
    EXPECT_FALSE(Validate(bad));
    bad.display_name = "line\nbreak";
    EXPECT_FALSE(Validate(bad));
    bad.display_name = " padded";
    EXPECT_FALSE(Validate(bad));
    bad.display_name = "\xc3\x28";  // invalid UTF-8
    EXPECT_FALSE(Validate(bad));
    bad.display_name = "\xc0\xaf";  // overlong '/'
    EXPECT_FALSE(Validate(bad));
    bad.display_name = "\xc2\x85";  // C1 control (NEL)
    EXPECT_FALSE(Validate(bad));

    bad = p;
    bad.description = std::string(2001, 'x');
    EXPECT_FALSE(Validate(bad));
    bad.description = "bell\a";
    EXPECT_FALSE(Validate(bad));
    bad = p;
    bad.tags = {"no spaces"};
    EXPECT_FALSE(Validate(bad));
    bad = p;
    bad.price_per_point_micro_usdc = kMaxPricePerPoint + 1;
    EXPECT_FALSE(Validate(bad));
}

TEST(ReviewTest, RatingOneToFiveAndBoundedText) {
    EXPECT_TRUE(ValidateReview(1, ""));
    EXPECT_TRUE(ValidateReview(5, "Fast and stable.\nWould rent again."));
    EXPECT_FALSE(ValidateReview(0, ""));
    EXPECT_FALSE(ValidateReview(6, ""));
    EXPECT_FALSE(ValidateReview(-1, ""));
    EXPECT_TRUE(ValidateReview(3, std::string(kMaxReviewLength, 'x')));
    EXPECT_FALSE(ValidateReview(3, std::string(kMaxReviewLength + 1, 'x')));
    EXPECT_FALSE(ValidateReview(3, std::string("nul\0byte", 8)));
}

}  // namespace
}  // namespace decloud::orchestrator::domain
