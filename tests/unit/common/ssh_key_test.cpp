#include "decloud/crypto/ssh_key.hpp"

#include <gtest/gtest.h>

#include "decloud/crypto/crypto.hpp"

namespace decloud::crypto {
namespace {

// Keys made with ssh-keygen (OpenSSH 9.2); fingerprints as `ssh-keygen -l` printed them.
struct Sample {
    const char* line;
    const char* algorithm;
    int bits;
    const char* fingerprint;
};

const Sample kAccepted[] = {
    {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEX2yc3exGYnsl50mItzdbFvbSE+96vqtGftrcAB5VPM "
     "user@ed25519",
     "ed25519", 256, "SHA256:bdvn1rYRDQOfsXSAdkeySkIBuDMTuDBb7heK2Jopr84"},
    {"ecdsa-sha2-nistp256 "
     "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNTslcrp7MeGwtBVFc7zNZYfNc1TTnEXHitwjjDZ"
     "CrW7GBZIXb84xCrmbVIQeIWlcQA2bzfJuqCcEL4W0jcudLE= user@ecdsab256",
     "ecdsa", 256, "SHA256:n19uXqeU86w03u2w9KvjF7Hsg1gOScwVkMV4NHIIY/o"},
    {"ecdsa-sha2-nistp384 "
     "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBOpngE7n3KdLpG26x5k79/I669AO7466W8DFrVas"
     "L9b0lHkMrIyYNtQzx269T/g8eiiiOZGBXoGwkUPd3JMlZn8VGqE9OmWTfaZso/A+9VJEjqe9dXcoOO5P4IhMjcnKMg== "
     "user@ecdsab384",
     "ecdsa", 384, "SHA256:QmPfFWxjCszIMvMC953vGoa+wfWZeenpDnmJYr9JDgA"},
    {"ecdsa-sha2-nistp521 "
     "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAFIjqnFmHFpMs2Y4NXrUad5ZYIb5CpT1IGML9pE"
     "Uc6uw3zrGcZrkV/VB/+617+S2Rrsn473+blCrTSDNouc4LdqrAHRY05cgrJBG5v2MIucrXti0o3YAPBG9/4yC5kCbOD8"
     "lBSqsbUpwIdaEz6yloiN9jH98yotyh7Mxa4rueEZc5EyXQ== user@ecdsab521",
     "ecdsa", 521, "SHA256:uSMq6QebxEpgcWEOE91GfPcAIQ3opaM6FroUq8dKz7E"},
    {"ssh-rsa "
     "AAAAB3NzaC1yc2EAAAADAQABAAABgQCxYYQ2vrJO3o0d/HHS5HEqwGeRXXxYeY5zbUqlFUIk6gxqBS6g3D+HB34kao4D"
     "nKPnKCv1yOSMrV6bplvYPQKFmQieccSEpUvOh2ujxOzFaM+hnhJws5HL3ZxSdW1kkREjVuYQ6VOs86S3S2XwH4rA74Mb5"
     "nPXhUkFcsndR87fZg8zlvZ5q3UlcdiM6dIJlmbEvGZbHkrEd8X/J0By5SjIweGeTdAIBE0UuacFje0gGrvZjmGqRW5n6P"
     "Rij0zWi65uZJB+NsoHi3hDh79vv2NwI7x3r7NGofQQlklLVaZRf2ueayBLb740yDUJ8KxmPNO3LQ+"
     "eMAdSLOqqYNSM4per"
     "jNKqUbiMhjpXwLS/lhQF+R18JToDezvwZFSz7YK4kpYSijPk8WV0Gr/"
     "CV9lBC5Fxc4AcmgQ6wJfCLI21CxUHONWULglupT"
     "6ugNTeL2ClZLgv9pPqP1QzvK3fbvHX5I10ZMoGMb/zhmUI7Oh+QWWvKStHI2bFq5eRUe40isTZLt0= user@rsab3072",
     "rsa", 3072, "SHA256:Wg678MciLhFgCYDphmSEdlvc0haxwKl+HCL0IZDPx84"},
};

constexpr const char* kRsa2048 =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQDWbYfxH7UbOhKMboGJVE3ifwfh8yjZL8RpOcg0HfZTId/BowhBHcra62LDnr1cTc"
    "IZPf80pKzwHudTzR3xfJQqXQS7DFnf1sSZFt2HhEzjEFq/ZZIS1elogAc/"
    "VlJykYRFCMQfTy00qwAu5o38FNFOQ8dRHgt4q"
    "qZlhQaWbFEp80a+fwTMaoBSSe5mLB+CYF+"
    "1FKBsEW9vom1otZJSFmMMXjcgGKT1XiL0WKVGb1z16i25HJVFzn8S5ZJBXoR9"
    "6EjPHETIIqjwpOUzTagtcLtPJDMlv0/LgYjj6jv42GS6IkhZSUY5y29msRbK0CGklZaciBpfi2XzLNmqhk8ojhw/ "
    "user@rsab2048";
constexpr const char* kDsa =
    "ssh-dss "
    "AAAAB3NzaC1kc3MAAACBAOcC1KYLj/"
    "Z8On4GXQ3JNTvbOgdCxek2eo2MyCZWn48W20Om21MBD9AonIndYlGSgqUjxJ4zgEW"
    "D4v211Q5ivpunoSaXq0qw+4JPHDjBxJ6E1dU3xal7G50oNY2V+"
    "6X2Ms80Mer50v9D8RUqBnkOqddVMsBY0lSOfyJzr7w9pG"
    "4jAAAAFQCPQnTZ3jQcL/vj7YMiRPTz5dkm7w== user@dsa";

TEST(SshPublicKey, AcceptsModernKeysWithOpenSshFingerprints) {
    for (const auto& s : kAccepted) {
        auto key = ParseSshPublicKey(s.line);
        ASSERT_TRUE(key) << s.line << ": " << key.error().message;
        EXPECT_EQ(key->algorithm, s.algorithm);
        EXPECT_EQ(key->bits, s.bits);
        EXPECT_EQ(key->fingerprint, s.fingerprint);
        EXPECT_EQ(key->authorized_key, s.line);
    }
}

TEST(SshPublicKey, CommentIsOptionalAndWhitespaceTolerated) {
    const std::string line = kAccepted[0].line;
    const std::string bare = line.substr(0, line.rfind(' '));
    auto key = ParseSshPublicKey("  " + bare + "\n");
    ASSERT_TRUE(key);
    EXPECT_EQ(key->comment, "");
    EXPECT_EQ(key->authorized_key, bare);
    EXPECT_EQ(key->fingerprint, kAccepted[0].fingerprint);
}

TEST(SshPublicKey, RefusesWeakOrUnknownKeys) {
    auto rsa = ParseSshPublicKey(kRsa2048);
    ASSERT_FALSE(rsa);
    EXPECT_NE(rsa.error().message.find("3072"), std::string::npos) << rsa.error().message;
    EXPECT_NE(rsa.error().message.find("2048"), std::string::npos);
    auto dsa = ParseSshPublicKey(kDsa);
    ASSERT_FALSE(dsa);
    EXPECT_NE(dsa.error().message.find("DSA"), std::string::npos);
    EXPECT_FALSE(ParseSshPublicKey("ssh-foo AAAA"));
}

TEST(SshPublicKey, RefusesMalformedLines) {
    const std::string ed = kAccepted[0].line;
    const std::string b64 = ed.substr(12, ed.rfind(' ') - 12);
    const std::vector<std::string> bad = {
        "",
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64",
        // authorized_keys options are not a key
        "command=\"/bin/sh\" " + ed,
        // declared type differs from the blob's
        "ecdsa-sha2-nistp256 " + b64,
        // two lines
        ed + "\nssh-ed25519 " + b64,
        // control characters in the comment
        "ssh-ed25519 " + b64 + " bad\x01comment",
        std::string("ssh-ed25519 ") + std::string(20000, 'A'),
    };
    for (const auto& line : bad) EXPECT_FALSE(ParseSshPublicKey(line)) << line;
}

TEST(SshPublicKey, RefusesTruncatedAndPaddedBlobs) {
    const std::string ed = kAccepted[0].line;
    const std::string b64 = ed.substr(12, ed.rfind(' ') - 12);
    auto blob = *Base64Decode(b64);
    auto truncated = blob;
    truncated.pop_back();
    EXPECT_FALSE(ParseSshPublicKey("ssh-ed25519 " + Base64Encode(truncated)));
    auto padded = blob;
    padded.push_back(0);
    EXPECT_FALSE(ParseSshPublicKey("ssh-ed25519 " + Base64Encode(padded)));
}

TEST(SshPublicKey, RefusesAnEcdsaPointOffTheCurve) {
    const std::string line = kAccepted[1].line;
    const std::string b64 = line.substr(20, line.rfind(' ') - 20);
    auto blob = *Base64Decode(b64);
    blob[blob.size() - 1] ^= 0x01;  // last byte of Y
    auto key = ParseSshPublicKey("ecdsa-sha2-nistp256 " + Base64Encode(blob));
    ASSERT_FALSE(key);
    EXPECT_NE(key.error().message.find("not on"), std::string::npos) << key.error().message;
}

}  // namespace
}  // namespace decloud::crypto
