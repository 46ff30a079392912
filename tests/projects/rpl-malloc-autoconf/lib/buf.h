#ifndef BUF_H
#define BUF_H
#include <stddef.h>

struct buf { char *data; size_t len; };

struct buf *buf_new(size_t len);          /* len may be 0: an empty buffer, not a failure */
int buf_put(struct buf *b, const char *s); /* appends s; 0 on success */
void buf_free(struct buf *b);

#endif
