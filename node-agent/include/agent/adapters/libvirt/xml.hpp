#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::agent::adapters::libvirt {

// Characters: XML 1.0 allows #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
// [#x10000-#x10FFFF]. Returns `text` without malformed UTF-8 sequences and without code points
// XML 1.0 does not allow (C0 controls other than tab, LF and CR, surrogates, U+FFFE, U+FFFF). Valid
// text is unchanged.
std::string SanitizeXmlText(std::string_view text);
// True if SanitizeXmlText would leave `text` unchanged.
bool IsValidXmlText(std::string_view text);

// Escapes for character data and for attribute values. The input must already be valid XML text;
// '>' is always escaped (so "]]>" cannot appear) and CR/TAB/LF are written as character
// references where the parser would otherwise normalise them away.
std::string EscapeXmlText(std::string_view text);
std::string EscapeXmlAttribute(std::string_view value);

// Builds an XML document element by element; every text and attribute value is sanitized and
// escaped, so no input can change the document's structure. Element and attribute names are the
// caller's constants: a name that is not a plain XML name throws std::invalid_argument.
// Not thread-safe (one writer per document).
class XmlWriter {
  public:
    using Attributes = std::initializer_list<std::pair<std::string_view, std::string_view>>;

    XmlWriter& Open(std::string_view name, Attributes attributes = {});
    XmlWriter& Empty(std::string_view name, Attributes attributes = {});
    XmlWriter& Leaf(std::string_view name, std::string_view text, Attributes attributes = {});
    XmlWriter& Close();
    // The document; throws std::logic_error if an element is still open.
    std::string Finish();

  private:
    void StartTag(std::string_view name, Attributes attributes);
    void Indent();

    std::string out_;
    std::vector<std::string> open_;
};

// A parsed element: enough XML to read back what libvirt returns (our metadata, a domain's
// devices). Namespace prefixes are kept as written; LocalName() drops them.
struct XmlElement {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;
    std::vector<XmlElement> children;
    std::string text;  // the character data directly inside this element, concatenated

    std::string_view LocalName() const;
    // The first child whose local name is `local_name`, or nullptr.
    const XmlElement* Child(std::string_view local_name) const;
    // The attribute's value by its qualified name, or nullptr.
    const std::string* Attribute(std::string_view qualified_name) const;
};

// Parses a document (or a lone element) of well-formed XML without DTDs: elements, attributes,
// character data, the five predefined entities, character references, CDATA, comments and
// processing instructions. kInvalidArgument on anything else or nesting deeper than 64.
common::Result<XmlElement> ParseXml(std::string_view document);

}  // namespace decloud::agent::adapters::libvirt
