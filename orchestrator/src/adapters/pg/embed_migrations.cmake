# Writes OUTPUT: a C++ file embedding every orchestrator/migrations/NNNN_name.sql in order.
file(GLOB sql_files "${MIGRATIONS_DIR}/*.sql")
list(SORT sql_files)
set(body "")
foreach(file ${sql_files})
    get_filename_component(base "${file}" NAME_WE)
    string(REGEX MATCH "^([0-9]+)_(.*)$" matched "${base}")
    if(NOT matched)
        message(FATAL_ERROR "migration file name must be NNNN_name.sql: ${file}")
    endif()
    math(EXPR version "${CMAKE_MATCH_1}")
    set(name "${CMAKE_MATCH_2}")
    file(READ "${file}" sql)
    string(APPEND body "        {${version}, \"${name}\", R\"decloud_sql(${sql})decloud_sql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from orchestrator/migrations by embed_migrations.cmake; do not edit.
#include \"orchestrator/adapters/pg/migrations.hpp\"

namespace decloud::orchestrator::adapters::pg {

const std::vector<Migration>& EmbeddedMigrations() {
    static const std::vector<Migration> kMigrations{
${body}    };
    return kMigrations;
}

}  // namespace decloud::orchestrator::adapters::pg
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
