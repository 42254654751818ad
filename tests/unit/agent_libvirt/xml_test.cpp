#include "agent/adapters/libvirt/xml.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace decloud::agent::adapters::libvirt {
namespace {

TEST(XmlEscape, TextEscapesMarkupAndCarriageReturn) {
    EXPECT_EQ(EscapeXmlText("a<b>&c]]>\r\n\t'\""), "a&lt;b&gt;&amp;c]]&gt;&#13;\n\t'\"");
}

TEST(XmlEscape, AttributeEscapesQuotesAndWhitespace) {
    EXPECT_EQ(EscapeXmlAttribute("'\"<&>\t\n\r"), "&apos;&quot;&lt;&amp;&gt;&#9;&#10;&#13;");
}

TEST(XmlSanitize, KeepsValidTextIncludingNonAscii) {
    const std::string text =
        "Gr\xC3\xBC\xC3\x9F"
        "e \xF0\x9F\x9A\x80 tab\tnl\ncr\r <>&'\"";
    EXPECT_EQ(SanitizeXmlText(text), text);
    EXPECT_TRUE(IsValidXmlText(text));
}

TEST(XmlSanitize, DropsControlsSurrogatesNonCharactersAndMalformedUtf8) {
    EXPECT_EQ(SanitizeXmlText(std::string("a\x00"
                                          "b\x01\x1f"
                                          "c",
                                          6)),
              "abc");
    EXPECT_EQ(SanitizeXmlText("x\xED\xA0\x80y"), "xy");      // an encoded surrogate
    EXPECT_EQ(SanitizeXmlText("x\xEF\xBF\xBEy"), "xy");      // U+FFFE
    EXPECT_EQ(SanitizeXmlText("x\xC0\xAFy"), "xy");          // overlong '/'
    EXPECT_EQ(SanitizeXmlText("x\xFF\xFEy\xE2\x82"), "xy");  // stray and truncated bytes
    EXPECT_FALSE(IsValidXmlText("a\x07"));
}

TEST(XmlWriter, WritesNestedElementsWithEscapedValues) {
    XmlWriter w;
    w.Open("root", {{"a", "x\"y"}}).Leaf("t", "1 < 2").Empty("e", {{"b", "'"}}).Close();
    auto doc = ParseXml(w.Finish());
    ASSERT_TRUE(doc) << doc.error().message;
    EXPECT_EQ(doc->name, "root");
    ASSERT_NE(doc->Attribute("a"), nullptr);
    EXPECT_EQ(*doc->Attribute("a"), "x\"y");
    ASSERT_NE(doc->Child("t"), nullptr);
    EXPECT_EQ(doc->Child("t")->text, "1 < 2");
    ASSERT_NE(doc->Child("e"), nullptr);
    EXPECT_EQ(*doc->Child("e")->Attribute("b"), "'");
}

TEST(XmlWriter, RefusesBadNamesAndUnbalancedDocuments) {
    XmlWriter bad_name;
    EXPECT_THROW(bad_name.Open("a b"), std::invalid_argument);
    XmlWriter bad_attr;
    EXPECT_THROW(bad_attr.Empty("a", {{"x=\"1\" y", "v"}}), std::invalid_argument);
    XmlWriter open;
    open.Open("a");
    EXPECT_THROW(open.Finish(), std::logic_error);
    XmlWriter closed;
    EXPECT_THROW(closed.Close(), std::logic_error);
}

TEST(XmlParse, DecodesReferencesCdataAndSkipsCommentsAndDeclarations) {
    auto doc = ParseXml(
        "<?xml version='1.0'?>\n<!-- c --><p:r xmlns:p='u'>a&lt;&amp;&#65;&#x1F680;"
        "<![CDATA[<x>&amp;]]><!-- inner --><?pi x?><p:c k=\"v&#10;w\"/>\r\nz</p:r>");
    ASSERT_TRUE(doc) << doc.error().message;
    EXPECT_EQ(doc->LocalName(), "r");
    EXPECT_EQ(doc->text, "a<&A\xF0\x9F\x9A\x80<x>&amp;\nz");
    ASSERT_NE(doc->Child("c"), nullptr);
    EXPECT_EQ(*doc->Child("c")->Attribute("k"), "v\nw");
}

TEST(XmlParse, NormalisesLiteralWhitespaceInAttributes) {
    auto doc = ParseXml("<r k='a\tb\nc'/>");
    ASSERT_TRUE(doc);
    EXPECT_EQ(*doc->Attribute("k"), "a b c");
}

TEST(XmlParse, RejectsMalformedInputAndDtds) {
    for (const char* bad : {
             "",
             "<a>",
             "<a></b>",
             "<a x='1></a>",
             "<a>&unknown;</a>",
             "<a>&#0;</a>",
             "<a>&#xD800;</a>",
             "<a/><b/>",
             "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
             "<a><!ENTITY e 'x'></a>",
             "<a>\x01</a>",
         }) {
        EXPECT_FALSE(ParseXml(bad)) << bad;
    }
}

TEST(XmlParse, BoundsNestingDepth) {
    std::string deep;
    for (int i = 0; i < 100; ++i) deep += "<a>";
    for (int i = 0; i < 100; ++i) deep += "</a>";
    auto doc = ParseXml(deep);
    ASSERT_FALSE(doc);
    EXPECT_EQ(doc.error().code, common::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace decloud::agent::adapters::libvirt
