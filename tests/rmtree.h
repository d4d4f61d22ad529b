/*
 * rmtree.h - removing a test's directory tree as root without being led
 * astray: the tree holds a private server's directory that belongs to the
 * server account, which could swap a subdirectory for a link while we walk.
 * So the walk goes through descriptors (openat with O_NOFOLLOW, unlinkat),
 * never through a path re-resolved after a check: a link is removed, never
 * followed.
 */
#ifndef PGBANK_TEST_RMTREE_H
#define PGBANK_TEST_RMTREE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Empties the directory open as dfd (closed on return).  0 or -1. */
static inline int rmtree_fd(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            continue;
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || rmtree_fd(sub) != 0 || unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
            rc = -1;
        else
            rewinddir(d); /* entries may have moved while we were below */
    }
    closedir(d);
    return rc;
}

/* Removes the tree at path (not following a link there either).  0 or -1. */
static inline int rmtree(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (rmtree_fd(fd) != 0)
        return -1;
    return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
}

#endif
