# Debian packages of the two daemons, built by CPack (scripts/package.sh):
#   decloud-node-agent_<version>-<revision>_amd64.deb    decloud-agent, its unit, /etc/decloud/agent.toml
#   decloud-orchestrator_<version>-<revision>_amd64.deb  decloud-orchestrator, templates, the web
#                                                         console, its unit,
#                                                         /etc/decloud/orchestrator.toml
# Each package is one CPack component; the daemons' own install() rules (component Unspecified)
# are not packaged. Included from the top CMakeLists.txt after every target exists.

set(DECLOUD_PACKAGE_VERSION "${PROJECT_VERSION}"
    CACHE STRING "Upstream version of the .deb packages (default: the project version)")
set(DECLOUD_PACKAGE_REVISION "1"
    CACHE STRING "Debian revision of the .deb packages; raise it for a newer build of one version")

set(_pkg_dir ${CMAKE_CURRENT_LIST_DIR})
set(_pkg_gen ${CMAKE_CURRENT_BINARY_DIR}/packaging)
set(_full_version "${DECLOUD_PACKAGE_VERSION}-${DECLOUD_PACKAGE_REVISION}")

# The packaged configs are deploy/*.toml with the state paths of the packaged layout
# (/var/lib/decloud/<daemon>); everything else keeps its documented default.
file(READ ${PROJECT_SOURCE_DIR}/deploy/agent.toml _agent_toml)
string(REPLACE "state_dir = \"/var/lib/decloud-agent\"" "state_dir = \"/var/lib/decloud/agent\""
               _agent_toml "${_agent_toml}")
string(REPLACE "vm_storage_path = \"/var/lib/decloud-agent/vms\""
               "vm_storage_path = \"/var/lib/decloud/vms\"" _agent_toml "${_agent_toml}")
string(REPLACE "images_dir = \"/var/lib/decloud-agent/images\""
               "images_dir = \"/var/lib/decloud/images\"" _agent_toml "${_agent_toml}")
string(REPLACE "/var/lib/decloud-agent" "/var/lib/decloud/agent" _agent_toml "${_agent_toml}")
file(WRITE ${_pkg_gen}/agent.toml "${_agent_toml}")
configure_file(${PROJECT_SOURCE_DIR}/deploy/orchestrator.toml ${_pkg_gen}/orchestrator.toml COPYONLY)

# Debian's changelog, one entry for this build (lintian wants it, compressed reproducibly).
string(TIMESTAMP _changelog_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
foreach(pkg decloud-node-agent decloud-orchestrator)
    file(WRITE ${_pkg_gen}/${pkg}/changelog.Debian
         "${pkg} (${_full_version}) unstable; urgency=medium\n\n"
         "  * Build of DeCloud ${DECLOUD_PACKAGE_VERSION}.\n\n"
         " -- DeCloud maintainers <maintainers@decloud.dev>  ${_changelog_date}\n")
    add_custom_command(
        OUTPUT ${_pkg_gen}/${pkg}/changelog.Debian.gz
        COMMAND gzip -n -9 -f -k ${_pkg_gen}/${pkg}/changelog.Debian
        DEPENDS ${_pkg_gen}/${pkg}/changelog.Debian
        COMMENT "Compressing ${pkg}'s changelog")
    list(APPEND _changelogs ${_pkg_gen}/${pkg}/changelog.Debian.gz)
endforeach()
# Manual pages, compressed the same way.
foreach(page decloud-agent.8 decloud-orchestrator.8)
    add_custom_command(
        OUTPUT ${_pkg_gen}/${page}.gz
        COMMAND gzip -n -9 -c ${_pkg_dir}/man/${page} > ${_pkg_gen}/${page}.gz
        DEPENDS ${_pkg_dir}/man/${page}
        COMMENT "Compressing ${page}")
    list(APPEND _changelogs ${_pkg_gen}/${page}.gz)
endforeach()
add_custom_target(decloud_package_files ALL DEPENDS ${_changelogs})

set(_secret PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
set(_doc_perms PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# decloud-node-agent
install(TARGETS decloud-agent RUNTIME DESTINATION bin COMPONENT agent)
install(FILES ${_pkg_gen}/agent.toml DESTINATION /etc/decloud ${_secret} COMPONENT agent)
install(FILES ${_pkg_dir}/systemd/decloud-node-agent.service DESTINATION /lib/systemd/system
        ${_doc_perms} COMPONENT agent)
install(FILES ${_pkg_dir}/copyright ${_pkg_gen}/decloud-node-agent/changelog.Debian.gz
        DESTINATION share/doc/decloud-node-agent ${_doc_perms} COMPONENT agent)
install(FILES ${_pkg_dir}/lintian/decloud-node-agent DESTINATION share/lintian/overrides
        ${_doc_perms} COMPONENT agent)
install(FILES ${_pkg_gen}/decloud-agent.8.gz DESTINATION share/man/man8 ${_doc_perms}
        COMPONENT agent)

# decloud-orchestrator
install(TARGETS decloud-orchestrator RUNTIME DESTINATION bin COMPONENT orchestrator)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/templates/ DESTINATION share/decloud/templates
        COMPONENT orchestrator FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# The built web console (target decloud_web), served under / from web.root's default.
install(DIRECTORY ${DECLOUD_WEB_DIST}/ DESTINATION share/decloud/web COMPONENT orchestrator
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${_pkg_gen}/orchestrator.toml DESTINATION /etc/decloud ${_secret}
        COMPONENT orchestrator)
install(FILES ${_pkg_dir}/systemd/decloud-orchestrator.service DESTINATION /lib/systemd/system
        ${_doc_perms} COMPONENT orchestrator)
install(FILES ${_pkg_dir}/copyright ${_pkg_gen}/decloud-orchestrator/changelog.Debian.gz
        DESTINATION share/doc/decloud-orchestrator ${_doc_perms} COMPONENT orchestrator)
install(FILES ${_pkg_dir}/lintian/decloud-orchestrator DESTINATION share/lintian/overrides
        ${_doc_perms} COMPONENT orchestrator)
install(FILES ${_pkg_gen}/decloud-orchestrator.8.gz DESTINATION share/man/man8 ${_doc_perms}
        COMPONENT orchestrator)

set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL agent orchestrator)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_NAME decloud)
set(CPACK_PACKAGE_VENDOR DeCloud)
set(CPACK_PACKAGE_CONTACT "DeCloud maintainers <maintainers@decloud.dev>")
set(CPACK_PACKAGE_VERSION ${DECLOUD_PACKAGE_VERSION})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${DECLOUD_PACKAGE_REVISION})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://decloud.dev")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME decloud-node-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS
    "adduser, libvirt-daemon-system, qemu-system-x86, qemu-utils, wireguard-tools, wireguard-go, nftables, iptables, genisoimage | xorriso, sysbench, ca-certificates")
set(CPACK_COMPONENT_AGENT_DESCRIPTION
    "DeCloud node agent: offers this machine's capacity to DeCloud
The agent discovers and benchmarks this machine, registers it with a DeCloud
orchestrator and keeps it registered (dialling out, so it works behind CGNAT),
runs the VMs the orchestrator schedules here with libvirt and QEMU, and
serves their HTTP and WebSocket traffic through its ingress proxy.

Run 'decloud-agent setup' once, then enable decloud-node-agent.service.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${_pkg_dir}/debian/decloud-node-agent/conffiles ${_pkg_dir}/debian/decloud-node-agent/postinst
    ${_pkg_dir}/debian/decloud-node-agent/prerm ${_pkg_dir}/debian/decloud-node-agent/postrm)

set(CPACK_DEBIAN_ORCHESTRATOR_PACKAGE_NAME decloud-orchestrator)
set(CPACK_DEBIAN_ORCHESTRATOR_PACKAGE_DEPENDS "adduser, postgresql-client, ca-certificates")
set(CPACK_COMPONENT_ORCHESTRATOR_DESCRIPTION
    "DeCloud orchestrator: the marketplace and scheduler of a DeCloud network
The orchestrator keeps the registry of nodes, schedules VMs onto them, assigns
relays to nodes behind CGNAT, meters usage and keeps the ledger in PostgreSQL.
It serves the HTTP API users, operators and node agents talk to.")
set(CPACK_DEBIAN_ORCHESTRATOR_PACKAGE_CONTROL_EXTRA
    ${_pkg_dir}/debian/decloud-orchestrator/conffiles
    ${_pkg_dir}/debian/decloud-orchestrator/postinst
    ${_pkg_dir}/debian/decloud-orchestrator/prerm ${_pkg_dir}/debian/decloud-orchestrator/postrm)

include(CPack)
