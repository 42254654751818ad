# Warnings every target gets; DECLOUD_WERROR (on in CI presets) makes them errors.
function(decloud_set_warnings target)
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                             -Wold-style-cast -Woverloaded-virtual
                                             -Wimplicit-fallthrough)
    if(DECLOUD_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()
