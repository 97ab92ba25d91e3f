/*
 * shmcom/export.h - SHMCOM_API marks the public functions and data.
 *
 * The shared library (a DLL on Windows) exports only what is marked; on
 * ELF everything else is hidden. A program that links the static library
 * defines SHMCOM_STATIC (the CMake target shmcom::shmcom_static does it).
 */
#ifndef SHMCOM_EXPORT_H
#define SHMCOM_EXPORT_H

#if defined(SHMCOM_STATIC)
#define SHMCOM_API
#elif defined(_WIN32)
#if defined(SHMCOM_BUILDING_DLL)
#define SHMCOM_API __declspec(dllexport)
#else
#define SHMCOM_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define SHMCOM_API __attribute__((visibility("default")))
#else
#define SHMCOM_API
#endif

#endif /* SHMCOM_EXPORT_H */
