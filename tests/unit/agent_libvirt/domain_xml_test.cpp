#include "agent/adapters/libvirt/domain_xml.hpp"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "decloud/process/run_program.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters::libvirt {
namespace {

using namespace std::chrono_literals;

constexpr const char* kVmId = "3f2b8c1e-4d5a-4e6f-8a9b-0c1d2e3f4a5b";

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

// The document as an independent parser (libxml2) sees it, queried by XPath.
class Parsed {
  public:
    explicit Parsed(const std::string& xml)
        : doc_(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
               &xmlFreeDoc) {
        if (doc_) {
            ctx_.reset(xmlXPathNewContext(doc_.get()));
            xmlXPathRegisterNs(ctx_.get(), X("d"), X("https://decloud.dev/xmlns/vm/1"));
        }
    }
    bool ok() const { return doc_ != nullptr; }

    std::vector<std::string> All(const std::string& xpath) const {
        std::vector<std::string> values;
        std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> result(
            xmlXPathEvalExpression(X(xpath.c_str()), ctx_.get()), &xmlXPathFreeObject);
        if (!result || result->nodesetval == nullptr) return values;
        for (int i = 0; i < result->nodesetval->nodeNr; ++i) {
            xmlChar* content = xmlNodeGetContent(result->nodesetval->nodeTab[i]);
            values.emplace_back(content != nullptr ? reinterpret_cast<const char*>(content) : "");
            xmlFree(content);
        }
        return values;
    }
    std::string One(const std::string& xpath) const {
        const auto values = All(xpath);
        return values.size() == 1 ? values[0] : "<" + std::to_string(values.size()) + " matches>";
    }
    // The element as libvirt hands it out (virDomainGetMetadata serialises the node).
    std::string Serialize(const std::string& xpath) const {
        std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> result(
            xmlXPathEvalExpression(X(xpath.c_str()), ctx_.get()), &xmlXPathFreeObject);
        if (!result || result->nodesetval == nullptr || result->nodesetval->nodeNr != 1) return {};
        std::unique_ptr<xmlBuffer, decltype(&xmlBufferFree)> buffer(xmlBufferCreate(),
                                                                    &xmlBufferFree);
        xmlNodeDump(buffer.get(), doc_.get(), result->nodesetval->nodeTab[0], 0, 0);
        return reinterpret_cast<const char*>(xmlBufferContent(buffer.get()));
    }

  private:
    std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc_{nullptr, &xmlFreeDoc};
    std::unique_ptr<xmlXPathContext, decltype(&xmlXPathFreeContext)> ctx_{nullptr,
                                                                          &xmlXPathFreeContext};
};

ports::VmSpec Spec(std::string name) {
    ports::VmSpec spec;
    spec.vm_id = kVmId;
    spec.name = std::move(name);
    spec.vcpus = 2;
    spec.memory_mib = 256;
    spec.disk_gib = 3;
    spec.base_image = "/var/lib/decloud/images/base.qcow2";
    spec.kernel_boot =
        ports::DirectKernelBoot{"/boot/vmlinuz", "/boot/initrd.img", "console=ttyS0 quiet"};
    spec.network = "default";
    return spec;
}

DomainXmlOptions Options() {
    DomainXmlOptions options;
    options.domain_type = "qemu";
    options.disk_path = std::string("/srv/vms/") + kVmId + "/disk.qcow2";
    options.seed_path = std::string("/srv/vms/") + kVmId + "/seed.iso";
    options.console_log_path = std::string("/srv/vms/") + kVmId + "/console.log";
    return options;
}

// virt-xml-validate checks the document against libvirt's own RelaxNG schema.
void ExpectValidForLibvirt(const std::string& xml) {
    testing::TempDir dir("decloud-domxml");
    const auto path = dir.path() + "/domain.xml";
    std::ofstream(path) << xml;
    auto result = process::RunProgram({"virt-xml-validate", path, "domain"}, 60s);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->exit_code, 0) << result->out << result->err << "\n" << xml;
}

const std::vector<std::string>& HostileNames() {
    static const std::vector<std::string> names{
        "plain",
        "</d:name></d:vm></metadata><devices><disk type='file'/></devices>",
        "a'b\"c&d<e>f",
        "]]>",
        "<![CDATA[x]]>",
        "&amp; &lt; &#x41; &bogus;",
        "<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
        "' onload='x' a=\"",
        "  spaced\ttab\nnewline\r\ncr  ",
        "Gr\xC3\xBC\xC3\x9F"
        "e \xF0\x9F\x9A\x80 \xE4\xBD\xA0\xE5\xA5\xBD",
        "",
    };
    return names;
}

TEST(DomainXml, HostileNamesKeepTheStructureAndRoundTrip) {
    for (const auto& name : HostileNames()) {
        SCOPED_TRACE(name);
        auto xml = BuildDomainXml(Spec(name), Options());
        ASSERT_TRUE(xml) << xml.error().message;
        const Parsed doc(*xml);
        ASSERT_TRUE(doc.ok()) << *xml;
        EXPECT_EQ(doc.One("/domain/d:vm/d:name"), "<0 matches>");
        EXPECT_EQ(doc.One("/domain/metadata/d:vm/d:name"), name);
        EXPECT_EQ(doc.One("/domain/metadata/d:vm/d:id"), kVmId);
        EXPECT_EQ(doc.All("/domain/devices/disk").size(), 2u);
        EXPECT_EQ(doc.All("/domain/devices/*").size(), 5u);
        EXPECT_EQ(doc.All("/domain/*").size(), 12u);

        // What virDomainGetMetadata returns reads back to the same name.
        const auto element = doc.Serialize("/domain/metadata/d:vm");
        auto metadata = ParseMetadata(element);
        ASSERT_TRUE(metadata) << metadata.error().message << "\n" << element;
        EXPECT_EQ(metadata->name, name);
        EXPECT_EQ(metadata->vm_id, kVmId);
    }
}

TEST(DomainXml, ValidatesAgainstLibvirtsSchema) {
    for (const auto& name : {HostileNames()[1], HostileNames()[6], HostileNames()[8]}) {
        auto xml = BuildDomainXml(Spec(name), Options());
        ASSERT_TRUE(xml) << xml.error().message;
        ExpectValidForLibvirt(*xml);
    }
    auto spec = Spec("disk boot");
    spec.kernel_boot.reset();
    auto options = Options();
    options.domain_type = "kvm";
    auto xml = BuildDomainXml(spec, options);
    ASSERT_TRUE(xml) << xml.error().message;
    ExpectValidForLibvirt(*xml);
    // Without a console log path the serial port has no <log>, and is still valid.
    options.console_log_path.clear();
    xml = BuildDomainXml(spec, options);
    ASSERT_TRUE(xml) << xml.error().message;
    EXPECT_EQ(xml->find("<log "), std::string::npos);
    ExpectValidForLibvirt(*xml);
}

TEST(DomainXml, ControlCharactersAreStrippedFromTheName) {
    const std::string name(
        "a\x01"
        "b\x1b[31mc\x7f\xFF"
        "d",
        12);
    EXPECT_EQ(StoredName(name),
              "ab[31mc\x7f"
              "d");
    auto xml = BuildDomainXml(Spec(name), Options());
    ASSERT_TRUE(xml) << xml.error().message;
    const Parsed doc(*xml);
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ(doc.One("/domain/metadata/d:vm/d:name"), StoredName(name));
    ExpectValidForLibvirt(*xml);
}

TEST(DomainXml, DescribesTheMachine) {
    auto xml = BuildDomainXml(Spec("web"), Options());
    ASSERT_TRUE(xml) << xml.error().message;
    const Parsed doc(*xml);
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ(doc.One("/domain/@type"), "qemu");
    EXPECT_EQ(doc.One("/domain/name"), std::string("decloud-") + kVmId);
    EXPECT_EQ(doc.One("/domain/uuid"), kVmId);
    EXPECT_EQ(doc.One("/domain/vcpu"), "2");
    EXPECT_EQ(doc.One("/domain/memory"), "256");
    EXPECT_EQ(doc.One("/domain/memory/@unit"), "MiB");
    EXPECT_EQ(doc.One("/domain/os/type"), "hvm");
    EXPECT_EQ(doc.One("/domain/os/kernel"), "/boot/vmlinuz");
    EXPECT_EQ(doc.One("/domain/os/initrd"), "/boot/initrd.img");
    EXPECT_EQ(doc.One("/domain/os/cmdline"), "console=ttyS0 quiet");
    EXPECT_TRUE(doc.All("/domain/os/boot").empty());
    EXPECT_EQ(doc.All("/domain/features/acpi").size(), 1u);
    EXPECT_TRUE(doc.All("/domain/cpu").empty());  // no host-passthrough under emulation

    const std::string disk = "/domain/devices/disk[@device='disk']";
    EXPECT_EQ(doc.One(disk + "/driver/@type"), "qcow2");
    EXPECT_EQ(doc.One(disk + "/source/@file"), Options().disk_path);
    EXPECT_EQ(doc.One(disk + "/target/@bus"), "virtio");
    EXPECT_EQ(doc.One(disk + "/target/@dev"), "vda");
    const std::string cdrom = "/domain/devices/disk[@device='cdrom']";
    EXPECT_EQ(doc.One(cdrom + "/source/@file"), Options().seed_path);
    EXPECT_EQ(doc.One(cdrom + "/target/@dev"), "sda");
    EXPECT_EQ(doc.One(cdrom + "/target/@bus"), "sata");
    EXPECT_EQ(doc.All(cdrom + "/readonly").size(), 1u);
    EXPECT_EQ(doc.One("/domain/devices/interface/@type"), "network");
    EXPECT_EQ(doc.One("/domain/devices/interface/source/@network"), "default");
    EXPECT_EQ(doc.One("/domain/devices/interface/model/@type"), "virtio");
    EXPECT_EQ(doc.One("/domain/devices/interface/mac/@address"), MacForVm(kVmId));
    EXPECT_EQ(doc.One("/domain/devices/serial/@type"), "pty");
    EXPECT_EQ(doc.One("/domain/devices/serial/log/@file"), Options().console_log_path);
    EXPECT_EQ(doc.One("/domain/devices/serial/log/@append"), "off");
    EXPECT_EQ(doc.One("/domain/devices/console/target/@type"), "serial");

    auto mac = FirstInterfaceMac(*xml);
    ASSERT_TRUE(mac);
    EXPECT_EQ(*mac, MacForVm(kVmId));
}

TEST(DomainXml, DiskBootWhenNoKernelIsGiven) {
    auto spec = Spec("disk");
    spec.kernel_boot.reset();
    auto options = Options();
    options.domain_type = "kvm";
    auto xml = BuildDomainXml(spec, options);
    ASSERT_TRUE(xml);
    const Parsed doc(*xml);
    EXPECT_EQ(doc.One("/domain/@type"), "kvm");
    EXPECT_EQ(doc.One("/domain/os/boot/@dev"), "hd");
    EXPECT_TRUE(doc.All("/domain/os/kernel").empty());
    EXPECT_EQ(doc.One("/domain/cpu/@mode"), "host-passthrough");
}

TEST(DomainXml, PathsWithMarkupAreEscapedNotInterpreted) {
    auto options = Options();
    options.disk_path = "/srv/a'b\"c/<x>&y.qcow2";
    auto xml = BuildDomainXml(Spec("p"), options);
    ASSERT_TRUE(xml);
    const Parsed doc(*xml);
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ(doc.One("/domain/devices/disk[@device='disk']/source/@file"), options.disk_path);
}

TEST(DomainXml, RefusesInvalidVmIds) {
    for (const std::string& bad : std::vector<std::string>{
             "", "not-a-uuid", "../../etc/passwd", std::string(kVmId) + "/..",
             std::string(kVmId) + "\n", "3f2b8c1e-4d5a-4e6f-8a9b-0c1d2e3f4a5", "decloud-x",
             "3f2b8c1e_4d5a_4e6f_8a9b_0c1d2e3f4a5b", "3f2b8c1e-4d5a-4e6f-8a9b-0c1d2e3f4a5g"}) {
        SCOPED_TRACE(bad);
        auto spec = Spec("x");
        spec.vm_id = bad;
        auto xml = BuildDomainXml(spec, Options());
        ASSERT_FALSE(xml);
        EXPECT_EQ(xml.error().code, common::ErrorCode::kInvalidArgument);
        EXPECT_FALSE(CanonicalVmId(bad));
    }
    auto upper = CanonicalVmId("3F2B8C1E-4D5A-4E6F-8A9B-0C1D2E3F4A5B");
    ASSERT_TRUE(upper);
    EXPECT_EQ(*upper, kVmId);
    EXPECT_EQ(DomainName(*upper), std::string("decloud-") + kVmId);
}

TEST(DomainXml, RefusesOutOfRangeOrUnsafeFields) {
    auto check = [](const char* what, auto mutate) {
        auto spec = Spec("x");
        auto options = Options();
        mutate(spec, options);
        auto xml = BuildDomainXml(spec, options);
        ASSERT_FALSE(xml) << what;
        EXPECT_EQ(xml.error().code, common::ErrorCode::kInvalidArgument) << what;
    };
    check("no vcpus", [](ports::VmSpec& s, DomainXmlOptions&) { s.vcpus = 0; });
    check("tiny memory", [](ports::VmSpec& s, DomainXmlOptions&) { s.memory_mib = 1; });
    check("no disk", [](ports::VmSpec& s, DomainXmlOptions&) { s.disk_gib = 0; });
    check("long name",
          [](ports::VmSpec& s, DomainXmlOptions&) { s.name.assign(kMaxNameBytes + 1, 'n'); });
    check("relative kernel",
          [](ports::VmSpec& s, DomainXmlOptions&) { s.kernel_boot->kernel = "vmlinuz"; });
    check("newline in initrd",
          [](ports::VmSpec& s, DomainXmlOptions&) { s.kernel_boot->initrd = "/boot/a\nb"; });
    check("control in cmdline",
          [](ports::VmSpec& s, DomainXmlOptions&) { s.kernel_boot->cmdline = "a\x01"; });
    check("empty network", [](ports::VmSpec& s, DomainXmlOptions&) { s.network.clear(); });
    check("relative disk", [](ports::VmSpec&, DomainXmlOptions& o) { o.disk_path = "d.qcow2"; });
    check("relative console log",
          [](ports::VmSpec&, DomainXmlOptions& o) { o.console_log_path = "console.log"; });
    check("domain type", [](ports::VmSpec&, DomainXmlOptions& o) { o.domain_type = "lxc"; });
    check("machine", [](ports::VmSpec&, DomainXmlOptions& o) { o.machine = "q35'/><x"; });
}

TEST(DomainXml, MacIsStablePerVmAndInQemusRange) {
    const std::regex shape("52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}");
    EXPECT_TRUE(std::regex_match(MacForVm(kVmId), shape));
    EXPECT_EQ(MacForVm(kVmId), MacForVm(kVmId));
    EXPECT_NE(MacForVm(kVmId), MacForVm("3f2b8c1e-4d5a-4e6f-8a9b-0c1d2e3f4a5c"));
}

TEST(Metadata, ParsesAnyPrefixAndRejectsForeignOrBrokenElements) {
    auto meta = ParseMetadata(std::string("<x:vm xmlns:x=\"https://decloud.dev/xmlns/vm/1\">\n  "
                                          "<x:id>") +
                              kVmId + "</x:id>\n  <x:name>a &lt; b &amp; ]]&gt;</x:name>\n</x:vm>");
    ASSERT_TRUE(meta) << meta.error().message;
    EXPECT_EQ(meta->vm_id, kVmId);
    EXPECT_EQ(meta->name, "a < b & ]]>");
    EXPECT_FALSE(ParseMetadata("<vm><id>nope</id><name>n</name></vm>"));
    EXPECT_FALSE(ParseMetadata(std::string("<other><id>") + kVmId + "</id><name/></other>"));
    EXPECT_FALSE(ParseMetadata(std::string("<vm><id>") + kVmId + "</id></vm>"));
    EXPECT_FALSE(ParseMetadata("<vm><id>"));
}

TEST(Metadata, IngressPortsRoundTripAndMalformedListsAreRefused) {
    auto spec = Spec("code");
    spec.ingress_ports = {8080, 443};
    auto xml = BuildDomainXml(spec, Options());
    ASSERT_TRUE(xml) << xml.error().message;
    const Parsed doc(*xml);
    ASSERT_TRUE(doc.ok()) << *xml;
    auto meta = ParseMetadata(doc.Serialize("/domain/metadata/d:vm"));
    ASSERT_TRUE(meta) << meta.error().message;
    EXPECT_EQ(meta->ingress_ports, (std::vector<std::uint16_t>{8080, 443}));
    for (const char* bad : {"", "80,", "x", "0", "70000", "80 ,81"}) {
        EXPECT_FALSE(ParseMetadata(std::string("<vm><id>") + kVmId +
                                   "</id><name>n</name><ingress-ports>" + bad +
                                   "</ingress-ports></vm>"))
            << bad;
    }
}

}  // namespace
}  // namespace decloud::agent::adapters::libvirt
