/*
 * input.h — the `freshet` command's input parsing, kept apart from main.c
 * so the unit tests can drive it: the text and binary row formats of
 * `freshet publish`, the --ids list of `freshet lookup`, the table specs
 * of `freshet model create`.  Names, decimals and HOST:PORT follow
 * common/'s rules (fr_name_check, fr_parse_u64, fr_parse_hostport).
 *
 * Text format (one row per line):
 *     ROW_ID V0 V1 ... V(dim-1)
 * fields separated by spaces or tabs (a trailing CR is ignored); ROW_ID is
 * an unsigned decimal integer (< 2^64), each V a finite decimal float
 * (anything strtof reads in full, except nan and inf).  Blank lines and
 * lines whose first non-blank character is '#' are skipped.  Every data
 * line has exactly dim values; dim is given, or taken from the first data
 * line (in->dim_line says which), to be checked against the table's with
 * cli_input_check_dim.  The same row id may appear more than once:
 * cli_input_dedup keeps the last.
 *
 * Binary format ("FRIN", for bulk; all little-endian, no padding):
 *     offset 0   u32  magic 0x4e495246, the bytes "FRIN"
 *            4   u16  version 1
 *            6   u16  reserved 0
 *            8   u32  dim   1..65536
 *           12   u32  n     >= 1 rows
 *           16   u64  rows[n]
 *     16 + 8 n   f32  values[n * dim], row-major, finite
 * and nothing after.  Every field is checked.
 *
 * Errors return FR_ERR_INVAL (or FR_ERR_RANGE, FR_ERR_TRUNC, FR_ERR_MAGIC,
 * FR_ERR_VERSION, FR_ERR_CORRUPT for the binary header, FR_ERR_NOMEM,
 * FR_ERR_IO) with a detail in fr_errmsg() that starts "line N: " for a
 * text line and says what was wrong; in->line holds N (0 when the error
 * is not about one line).  Text lines are numbered from 1, as an editor
 * does; binary rows are numbered from 0, as their offsets are ("row 1 (id
 * 1001) V2" is the second row).  Nothing here prints.  One thread per
 * object.
 */
#ifndef FRESHET_CLI_INPUT_H
#define FRESHET_CLI_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "shard/shard.h"

#define CLI_INPUT_MAGIC 0x4e495246u   /* "FRIN" little-endian */
#define CLI_INPUT_VERSION 1
#define CLI_INPUT_HDR_BYTES 16
#define CLI_DIM_MAX 65536             /* SHARD_DIM_MAX */

struct cli_input {
	uint32_t n;           /* rows */
	uint32_t dim;         /* values per row (0 until known) */
	uint64_t *rows;       /* n, owned */
	float *values;        /* n * dim, owned */
	size_t cap;           /* rows allocated */
	size_t line;          /* failing text line (1-based), 0 if none */
	size_t dim_line;      /* text: the line dim was taken from (the first
			       * data line) when it was not given; else 0 */
};

void cli_input_init(struct cli_input *in);
void cli_input_fini(struct cli_input *in);

/* Read the whole text input from f (borrowed; read to EOF).  dim 0: take
 * it from the first data line.  An input without rows is an error
 * ("no rows").  On error in holds no rows. */
enum fr_err cli_input_read_text(struct cli_input *in, FILE *f, uint32_t dim);
/* The same for text already in memory (len bytes, need not end in a
 * newline). */
enum fr_err cli_input_parse_text(struct cli_input *in, const char *buf,
				 size_t len, uint32_t dim);

/* The binary format, from f (read to EOF) or from memory.  dim 0: any;
 * otherwise the header's dim must equal it. */
enum fr_err cli_input_read_binary(struct cli_input *in, FILE *f,
				  uint32_t dim);
enum fr_err cli_input_parse_binary(struct cli_input *in, const uint8_t *buf,
				   size_t len, uint32_t dim);

/* Text input whose dim came from its first data line must match the
 * table's (dim, named table): FR_OK, or FR_ERR_INVAL with a detail
 * naming that line.  Input with a given dim, and binary input, pass. */
enum fr_err cli_input_check_dim(const struct cli_input *in, uint32_t dim,
				const char *table);

/* Keep only the last occurrence of each row id (their order otherwise
 * kept); returns how many earlier occurrences were dropped. */
uint32_t cli_input_dedup(struct cli_input *in);

/* "1,2,3": unsigned decimal ids, comma separated, none empty; *ids is
 * malloc'd (caller frees).  FR_ERR_INVAL (FR_ERR_RANGE) naming the item,
 * "--ids item N", counted from 1. */
enum fr_err cli_parse_ids(const char *s, uint64_t **ids, uint32_t *n);

/* "NAME:ROWS:DIM[:f32|f16]" (dtype f32 when left out): NAME a name
 * (fr_name_check, <= SHARD_NAME_MAX), ROWS 1..2^63-1 (the JSON integer
 * range of the model znode), DIM 1..SHARD_DIM_MAX.  *out is written only on FR_OK;
 * the detail quotes the spec (shown with fr_show) and names the field. */
enum fr_err cli_parse_table(const char *s, struct shard_table_def *out);

#endif /* FRESHET_CLI_INPUT_H */
