# gen_stubs.cmake - writes the link-check stub library's source from
# websock.h, so that the two cannot drift: every function websock.h
# declares becomes one exported stub that aborts if it is ever called.
#   cmake -DIN=websock.i -DOUT=websock_stubs.c -P gen_stubs.cmake
# IN is websock.h run through the C preprocessor (`cc -E -P`): comments are
# gone, so every "websock_name(" left is a function declaration (types are
# never followed by a parenthesis, and the table's callbacks are (*name)).
cmake_minimum_required(VERSION 3.20)
file(READ "${IN}" text)
string(REGEX MATCHALL "websock_[a-z0-9_]+[ \t\r\n]*\\(" calls "${text}")
set(names "")
foreach(call ${calls})
  string(REGEX REPLACE "[ \t\r\n]*\\($" "" name "${call}")
  list(APPEND names ${name})
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
list(LENGTH names count)
if(count LESS 10)
  message(FATAL_ERROR "gen_stubs: only ${count} functions found in ${IN}")
endif()

set(WEBSOCK_STUBS "")
foreach(name ${names})
  string(APPEND WEBSOCK_STUBS "WEBSOCK_STUB(${name})\n")
endforeach()
configure_file("${CMAKE_CURRENT_LIST_DIR}/websock_stubs.c.in" "${OUT}.tmp" @ONLY)
# Rewritten only when changed, so a comment edit in websock.h relinks nothing.
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
