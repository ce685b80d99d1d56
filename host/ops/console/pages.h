/*
 * pages.h - the console's pages, embedded at build time from
 * host/console/console.html and status.html (host/console/embed.cmake
 * writes console_pages.c into the build tree). Each is NUL-terminated;
 * _len excludes the NUL.
 */
#ifndef WSH_CONSOLE_PAGES_H
#define WSH_CONSOLE_PAGES_H

#include <stddef.h>

extern const unsigned char wsh_page_console[];
extern const size_t wsh_page_console_len;
extern const unsigned char wsh_page_status[];
extern const size_t wsh_page_status_len;

#endif
