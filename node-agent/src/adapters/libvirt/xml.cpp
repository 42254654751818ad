#include "agent/adapters/libvirt/xml.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>

namespace decloud::agent::adapters::libvirt {

using common::Error;
using common::Result;

namespace {

struct Decoded {
    char32_t code_point = 0;
    std::size_t length = 0;
};

// One UTF-8 sequence at text[pos]; nullopt if it is malformed, overlong or a surrogate.
std::optional<Decoded> DecodeUtf8(std::string_view text, std::size_t pos) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
    const unsigned char lead = byte(0);
    if (lead < 0x80) return Decoded{lead, 1};
    std::size_t length = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        cp = lead & 0x1Fu;
        min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        cp = lead & 0x0Fu;
        min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        cp = lead & 0x07u;
        min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (pos + length > text.size()) return std::nullopt;
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (byte(i) & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    return Decoded{cp, length};
}

bool IsXmlChar(char32_t c) {
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

void AppendUtf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool IsNameStart(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

void RequireName(std::string_view name) {
    if (name.empty() || !IsNameStart(name.front()))
        throw std::invalid_argument("not an XML name: " + std::string(name));
    for (const char c : name)
        if (!IsNameChar(c)) throw std::invalid_argument("not an XML name: " + std::string(name));
}

}  // namespace

std::string SanitizeXmlText(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto decoded = DecodeUtf8(text, pos);
        if (!decoded) {
            ++pos;  // a stray byte: drop it and resynchronise on the next one
            continue;
        }
        if (IsXmlChar(decoded->code_point)) out.append(text.substr(pos, decoded->length));
        pos += decoded->length;
    }
    return out;
}

bool IsValidXmlText(std::string_view text) { return SanitizeXmlText(text) == text; }

namespace {

// Attribute values also need their quotes escaped and whitespace kept as character references,
// since attribute-value normalisation would turn literal tabs and newlines into spaces.
std::string Escape(std::string_view text, bool attribute) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '\r':
                out += "&#13;";  // a literal CR would be read back as LF
                break;
            case '"':
                out += attribute ? "&quot;" : "\"";
                break;
            case '\'':
                out += attribute ? "&apos;" : "'";
                break;
            case '\t':
                out += attribute ? "&#9;" : "\t";
                break;
            case '\n':
                out += attribute ? "&#10;" : "\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace

std::string EscapeXmlText(std::string_view text) { return Escape(text, false); }

std::string EscapeXmlAttribute(std::string_view value) { return Escape(value, true); }

void XmlWriter::Indent() { out_.append(open_.size() * 2, ' '); }

void XmlWriter::StartTag(std::string_view name, Attributes attributes) {
    RequireName(name);
    Indent();
    out_ += '<';
    out_ += name;
    for (const auto& [key, value] : attributes) {
        RequireName(key);
        out_ += ' ';
        out_ += key;
        out_ += "=\"";
        out_ += EscapeXmlAttribute(SanitizeXmlText(value));
        out_ += '"';
    }
}

XmlWriter& XmlWriter::Open(std::string_view name, Attributes attributes) {
    StartTag(name, attributes);
    out_ += ">\n";
    open_.emplace_back(name);
    return *this;
}

XmlWriter& XmlWriter::Empty(std::string_view name, Attributes attributes) {
    StartTag(name, attributes);
    out_ += "/>\n";
    return *this;
}

// NOLINTNEXTLINE(bugprone-easily-swappable-parameters): element name, then its text, as in XML
XmlWriter& XmlWriter::Leaf(std::string_view name, std::string_view text, Attributes attributes) {
    StartTag(name, attributes);
    out_ += '>';
    out_ += EscapeXmlText(SanitizeXmlText(text));
    out_ += "</";
    out_ += name;
    out_ += ">\n";
    return *this;
}

XmlWriter& XmlWriter::Close() {
    if (open_.empty()) throw std::logic_error("XmlWriter::Close without an open element");
    const std::string name = std::move(open_.back());
    open_.pop_back();
    Indent();
    out_ += "</" + name + ">\n";
    return *this;
}

std::string XmlWriter::Finish() {
    if (!open_.empty())
        throw std::logic_error("XmlWriter::Finish with <" + open_.back() + "> open");
    return std::move(out_);
}

std::string_view XmlElement::LocalName() const {
    const auto colon = name.find(':');
    return colon == std::string::npos ? std::string_view(name)
                                      : std::string_view(name).substr(colon + 1);
}

const XmlElement* XmlElement::Child(std::string_view local_name) const {
    for (const auto& child : children)
        if (child.LocalName() == local_name) return &child;
    return nullptr;
}

const std::string* XmlElement::Attribute(std::string_view qualified_name) const {
    for (const auto& [key, value] : attributes)
        if (key == qualified_name) return &value;
    return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
  public:
    explicit Parser(std::string_view input) : in_(input) {}

    Result<XmlElement> Document() {
        if (auto st = SkipMisc(); !st) return st.error();
        if (in_.substr(pos_).starts_with("<!")) return Fail("DTDs are not accepted");
        auto root = Element(0);
        if (!root) return root;
        if (auto st = SkipMisc(); !st) return st.error();
        if (pos_ != in_.size()) return Fail("content after the root element");
        return root;
    }

  private:
    Error Fail(std::string_view what) const {
        return Error::InvalidArgument("malformed XML at offset " + std::to_string(pos_) + ": " +
                                      std::string(what));
    }
    bool Eof() const { return pos_ >= in_.size(); }
    bool At(std::string_view s) const { return in_.substr(pos_).starts_with(s); }
    static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
    void SkipSpace() {
        while (!Eof() && IsSpace(in_[pos_])) ++pos_;
    }

    // Skips from the current position past `terminator`.
    common::Status SkipPast(std::string_view terminator) {
        const auto end = in_.find(terminator, pos_);
        if (end == std::string_view::npos) return Fail("unterminated construct");
        pos_ = end + terminator.size();
        return common::Ok();
    }

    // Whitespace, comments and processing instructions (the XML declaration among them).
    common::Status SkipMisc() {
        for (;;) {
            SkipSpace();
            if (At("<?")) {
                if (auto st = SkipPast("?>"); !st) return st;
            } else if (At("<!--")) {
                if (auto st = SkipPast("-->"); !st) return st;
            } else {
                return common::Ok();
            }
        }
    }

    Result<std::string> Name() {
        const auto start = pos_;
        if (Eof() || !(IsNameStart(in_[pos_]) || static_cast<unsigned char>(in_[pos_]) >= 0x80))
            return Fail("expected a name");
        while (!Eof() && (IsNameChar(in_[pos_]) || static_cast<unsigned char>(in_[pos_]) >= 0x80))
            ++pos_;
        return std::string(in_.substr(start, pos_ - start));
    }

    // Appends character data up to `stop`, decoding references and normalising line ends
    // (and, in attribute values, whitespace) as an XML processor does.
    common::Status CharData(std::string& out, char stop, bool attribute) {
        while (!Eof() && in_[pos_] != stop) {
            const char c = in_[pos_];
            if (c == '<') return Fail("'<' in an attribute value");
            if (c == '&') {
                if (auto st = Reference(out); !st) return st;
                continue;
            }
            if (c == '\r') {
                out += attribute ? ' ' : '\n';
                ++pos_;
                if (At("\n")) ++pos_;
                continue;
            }
            out += (attribute && (c == '\n' || c == '\t')) ? ' ' : c;
            ++pos_;
        }
        return common::Ok();
    }

    common::Status Reference(std::string& out) {
        const auto end = in_.find(';', pos_);
        if (end == std::string_view::npos || end - pos_ > 12) return Fail("bad reference");
        const auto ref = in_.substr(pos_ + 1, end - pos_ - 1);
        pos_ = end + 1;
        if (ref == "lt") {
            out += '<';
        } else if (ref == "gt") {
            out += '>';
        } else if (ref == "amp") {
            out += '&';
        } else if (ref == "quot") {
            out += '"';
        } else if (ref == "apos") {
            out += '\'';
        } else if (ref.size() >= 2 && ref[0] == '#') {
            const bool hex = ref[1] == 'x';
            const auto digits = ref.substr(hex ? 2 : 1);
            if (digits.empty()) return Fail("bad character reference");
            std::uint32_t cp = 0;
            for (const char d : digits) {
                int v = -1;
                if (d >= '0' && d <= '9') v = d - '0';
                if (hex && d >= 'a' && d <= 'f') v = d - 'a' + 10;
                if (hex && d >= 'A' && d <= 'F') v = d - 'A' + 10;
                if (v < 0) return Fail("bad character reference");
                cp = cp * (hex ? 16u : 10u) + static_cast<std::uint32_t>(v);
                if (cp > 0x10FFFF) return Fail("character reference out of range");
            }
            if (!IsXmlChar(cp)) return Fail("character reference to a non-XML character");
            AppendUtf8(out, cp);
        } else {
            return Fail("unknown entity");
        }
        return common::Ok();
    }

    Result<XmlElement> Element(int depth) {
        if (depth > kMaxDepth) return Fail("nested too deeply");
        if (!At("<")) return Fail("expected '<'");
        ++pos_;
        XmlElement element;
        auto name = Name();
        if (!name) return name.error();
        element.name = std::move(*name);
        for (;;) {
            SkipSpace();
            if (At("/>")) {
                pos_ += 2;
                return element;
            }
            if (At(">")) {
                ++pos_;
                break;
            }
            auto key = Name();
            if (!key) return key.error();
            SkipSpace();
            if (!At("=")) return Fail("expected '='");
            ++pos_;
            SkipSpace();
            if (Eof() || (in_[pos_] != '"' && in_[pos_] != '\'')) return Fail("expected a quote");
            const char quote = in_[pos_++];
            std::string value;
            if (auto st = CharData(value, quote, true); !st) return st.error();
            if (Eof()) return Fail("unterminated attribute value");
            ++pos_;
            element.attributes.emplace_back(std::move(*key), std::move(value));
        }
        for (;;) {
            if (Eof()) return Fail("unterminated element <" + element.name + ">");
            if (At("</")) {
                pos_ += 2;
                auto end = Name();
                if (!end) return end.error();
                if (*end != element.name) return Fail("mismatched end tag </" + *end + ">");
                SkipSpace();
                if (!At(">")) return Fail("expected '>'");
                ++pos_;
                return element;
            }
            if (At("<!--")) {
                if (auto st = SkipPast("-->"); !st) return st.error();
            } else if (At("<![CDATA[")) {
                const auto start = pos_ + 9;
                const auto end = in_.find("]]>", start);
                if (end == std::string_view::npos) return Fail("unterminated CDATA");
                element.text.append(in_.substr(start, end - start));
                pos_ = end + 3;
            } else if (At("<?")) {
                if (auto st = SkipPast("?>"); !st) return st.error();
            } else if (At("<!")) {
                return Fail("markup declaration inside an element");
            } else if (At("<")) {
                auto child = Element(depth + 1);
                if (!child) return child;
                element.children.push_back(std::move(*child));
            } else {
                if (auto st = CharData(element.text, '<', false); !st) return st.error();
            }
        }
    }

    std::string_view in_;
    std::size_t pos_ = 0;
};

}  // namespace

Result<XmlElement> ParseXml(std::string_view document) {
    if (!IsValidXmlText(document))
        return Error::InvalidArgument("XML contains characters that XML 1.0 does not allow");
    return Parser(document).Document();
}

}  // namespace decloud::agent::adapters::libvirt
