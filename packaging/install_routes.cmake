# Install-time: writes each route file of plugins.d/ to WSH_ROUTES_DEST with
# its `plugin = NAME.so` line pointing at WSH_PLUGIN_DIR/NAME.so.
file(MAKE_DIRECTORY "${WSH_ROUTES_DEST}")
foreach(f ${WSH_ROUTE_FILES})
  get_filename_component(name "${f}" NAME)
  file(READ "${f}" text)
  string(REGEX REPLACE "(^|\n)plugin[ \t]*=[ \t]*([^ \t\n;/]+\\.so)"
         "\\1plugin = ${WSH_PLUGIN_DIR}/\\2" text "${text}")
  message(STATUS "Installing: ${WSH_ROUTES_DEST}/${name}")
  file(WRITE "${WSH_ROUTES_DEST}/${name}" "${text}")
endforeach()
