# Warnings every target gets; DECLOUD_WERROR (on in CI presets) makes them errors.
function(decloud_set_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                             -Wold-style-cast -Woverloaded-virtual
                                             -Wimplicit-fallthrough)
    # g++ 12 at -O2 pairs Asio's coroutine frame allocator with the wrong delete once it inlines
    # the frame (a false positive); the check stays on in debug builds.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-Wno-mismatched-new-delete>)
    endif()
    if(DECLOUD_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()
