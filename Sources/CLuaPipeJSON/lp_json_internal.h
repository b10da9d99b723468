// Internal to CLuaPipeJSON: shared by the reader (lp_json.c) and the writer (lp_json_write.c).
#ifndef LP_JSON_INTERNAL_H
#define LP_JSON_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "lp_json.h"

enum { T_NULL = 0, T_FALSE = 1, T_TRUE = 2, T_INT = 3, T_DOUBLE = 4, T_STRING = 5, T_ARRAY = 6, T_OBJECT = 7 };

/// Each thread's buffers, freed when the thread ends (a pthread key's destructor: plain
/// thread-locals would leak them, and embedders start and stop worker threads).
typedef struct scratch { uint8_t *tape, *text; size_t tape_cap, text_cap; } scratch;
/// The calling thread's buffers, or NULL when memory ran out.
scratch *lp_json_scratch_get(void);
/// Makes *buf hold at least `need` bytes; NULL when memory ran out.
uint8_t *lp_json_reserve(uint8_t **buf, size_t *cap, size_t need);
#endif
