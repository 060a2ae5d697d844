// The few file-system operations we need, on POSIX calls.
//
// Why not std::filesystem: PyTorch's wheel exports its own copy of the std::filesystem
// functions from libtorch.so, and the dynamic linker binds ours to them; remove_all then
// jumps to a null pointer (seen with torch 2.11 and GCC 12). So nothing here, nor anywhere
// in the project, calls std::filesystem.
#pragma once
#include <string>
#include <vector>

namespace rwkv7::fs {

bool exists(const std::string& path);
bool is_regular_file(const std::string& path);
bool is_directory(const std::string& path);
// Whether both name one existing file (the same path, a link to it, or another hard link: the
// same device and inode). False when either does not exist.
bool same_file(const std::string& a, const std::string& b);
// mkdir -p; throws std::runtime_error naming the path on failure
void create_directories(const std::string& path);
// rm -rf; missing paths are fine
void remove_all(const std::string& path);
// names (not paths) of the entries of a directory, sorted; empty if it cannot be read
std::vector<std::string> list_directory(const std::string& path);
// "a/b/c.pth" -> "a/b"; "c.pth" -> "."
std::string parent_directory(const std::string& path);
// fsync the directory that holds `path`, so that a rename into it is durable
void sync_parent_directory(const std::string& path);
// `content` as `path`, all or nothing: a temporary file beside it, fsync, rename. Throws
// std::runtime_error naming `path` (the previous file, if any, is left as it was).
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace rwkv7::fs
