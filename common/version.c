/*
 * version.c — the one version string of freshet, from CMake's
 * project(VERSION) (common/CMakeLists.txt passes it in).  Every binary
 * prints this one; nothing else spells a version.
 */
#include "common/common.h"

#ifndef FRESHET_VERSION
#error "FRESHET_VERSION must come from CMake's project(VERSION)"
#endif

const char *fr_version(void)
{
	return FRESHET_VERSION;
}
