/*
 * test_shard_schema.c — CUnit suite for model definitions (shard/schema.c):
 * dtype names and sizes, every class of validation error with its code and
 * a detail naming the field, table lookup by name.  It does not build
 * stores (test_shard_store.c does).
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "shard/shard.h"
#include "testutil.h"
#include "unit_main.h"

static void good_def(struct shard_model_def *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "ranker.v2");
	d->priority = 3;
	d->shards = 8;
	d->ntables = 2;
	snprintf(d->tables[0].name, sizeof(d->tables[0].name), "users");
	d->tables[0].rows = 1000;
	d->tables[0].dim = 16;
	d->tables[0].dtype = SHARD_F32;
	snprintf(d->tables[1].name, sizeof(d->tables[1].name), "items-2_x");
	d->tables[1].rows = 1;
	d->tables[1].dim = SHARD_DIM_MAX;
	d->tables[1].dtype = SHARD_F16;
}

static void test_dtype(void)
{
	enum shard_dtype dt;

	CU_ASSERT_EQUAL(shard_dtype_size(SHARD_F32), 4);
	CU_ASSERT_EQUAL(shard_dtype_size(SHARD_F16), 2);
	CU_ASSERT_EQUAL(shard_dtype_size((enum shard_dtype)7), 0);
	CU_ASSERT_STRING_EQUAL(shard_dtype_name(SHARD_F32), "f32");
	CU_ASSERT_STRING_EQUAL(shard_dtype_name(SHARD_F16), "f16");
	CU_ASSERT_EQUAL(shard_dtype_parse("f32", &dt), FR_OK);
	CU_ASSERT_EQUAL(dt, SHARD_F32);
	CU_ASSERT_EQUAL(shard_dtype_parse("f16", &dt), FR_OK);
	CU_ASSERT_EQUAL(dt, SHARD_F16);
	dt = SHARD_F32;
	CU_ASSERT_EQUAL(shard_dtype_parse("F16", &dt), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'F16'"));
	CU_ASSERT_EQUAL(dt, SHARD_F32);
	CU_ASSERT_EQUAL(shard_dtype_parse("", &dt), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(shard_dtype_parse("f32 ", &dt), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(shard_dtype_parse(NULL, &dt), FR_ERR_INVAL);
}

static void test_good_defs(void)
{
	struct shard_model_def d;

	good_def(&d);
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_OK);
	CU_ASSERT_EQUAL(shard_row_bytes(&d.tables[0]), 64);
	CU_ASSERT_EQUAL(shard_row_bytes(&d.tables[1]), 2 * SHARD_DIM_MAX);
	/* Extremes that are allowed. */
	d.shards = SHARD_SHARDS_MAX;
	d.ntables = SHARD_TABLES_MAX;
	for (uint32_t i = 0; i < SHARD_TABLES_MAX; i++) {
		snprintf(d.tables[i].name, sizeof(d.tables[i].name), "t%u", i);
		d.tables[i].rows = 1;
		d.tables[i].dim = 1;
		d.tables[i].dtype = SHARD_F16;
	}
	memset(d.name, 'a', SHARD_NAME_MAX);
	d.name[SHARD_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_OK);
	CU_ASSERT_EQUAL(shard_of_row(17, 8), 1);
	CU_ASSERT_EQUAL(shard_of_row(16, 8), 0);
}

/* d is refused with code and, unless detail is NULL, a detail containing
 * it. */
static void expect_refused(const struct shard_model_def *d, enum fr_err code,
			   const char *detail)
{
	CU_ASSERT_EQUAL(shard_model_validate(d), code);
	if (detail)
		CU_ASSERT(errmsg_has(detail));
}

/* good_def() into the caller's d with one change (`edit`, a statement on
 * d), refused as expect_refused says. */
#define EXPECT_INVALID(edit, code, detail)                                  \
	do {                                                                \
		good_def(&d);                                               \
		edit;                                                       \
		expect_refused(&d, code, detail);                           \
	} while (0)

static void test_name_errors(void)
{
	struct shard_model_def d;

	EXPECT_INVALID(d.name[0] = '\0', FR_ERR_INVAL, "model is empty");
	/* Not terminated. */
	EXPECT_INVALID(memset(d.name, 'a', sizeof(d.name)), FR_ERR_INVAL,
		       "longer than 63");
	EXPECT_INVALID(snprintf(d.name, sizeof(d.name), "bad/name"),
		       FR_ERR_INVAL, "0x2f");
	EXPECT_INVALID(snprintf(d.tables[1].name, sizeof(d.tables[1].name),
				"sp ace"),
		       FR_ERR_INVAL, "model 'ranker.v2' table 1");
	EXPECT_INVALID(d.tables[0].name[0] = '\0', FR_ERR_INVAL,
		       "table 0 is empty");
	EXPECT_INVALID(snprintf(d.tables[1].name, sizeof(d.tables[1].name),
				"users"),
		       FR_ERR_EXISTS, "duplicate table name 'users'");
	CU_ASSERT_EQUAL(shard_model_validate(NULL), FR_ERR_INVAL);
}

static void test_range_errors(void)
{
	struct shard_model_def d;

	EXPECT_INVALID(d.ntables = 0, FR_ERR_RANGE,
		       "ntables 0 out of range [1, 64]");
	EXPECT_INVALID(d.ntables = SHARD_TABLES_MAX + 1, FR_ERR_RANGE,
		       "ntables 65");
	EXPECT_INVALID(d.shards = 0, FR_ERR_RANGE,
		       "shards 0 out of range [1, 1048576]");
	EXPECT_INVALID(d.shards = SHARD_SHARDS_MAX + 1, FR_ERR_RANGE, NULL);
	EXPECT_INVALID(d.tables[0].rows = 0, FR_ERR_RANGE,
		       "table 'users': rows 0");
	EXPECT_INVALID(d.tables[0].dim = 0, FR_ERR_RANGE,
		       "model 'ranker.v2' table 'users': dim 0 out of range [1, 65536]");
	EXPECT_INVALID(d.tables[0].dim = SHARD_DIM_MAX + 1, FR_ERR_RANGE,
		       "dim 65537");
	EXPECT_INVALID(d.tables[1].dtype = (enum shard_dtype)0, FR_ERR_INVAL,
		       "table 'items-2_x': dtype 0 unknown");
	/* rows * 16 * 4 overflows. */
	EXPECT_INVALID(d.tables[0].rows = UINT64_MAX / 4, FR_ERR_TOOBIG,
		       "table 'users': rows*dim*4 overflows");
	/* rows*2 fits but the 12 bytes of version+origin per row do not. */
	EXPECT_INVALID((d.tables[0].dim = 1, d.tables[0].dtype = SHARD_F16,
			d.tables[0].rows = UINT64_MAX / 8),
		       FR_ERR_TOOBIG, "rows*dim*2 overflows");
}

static void test_table_index(void)
{
	struct shard_model_def d;

	good_def(&d);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, "users"), 0);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, "items-2_x"), 1);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, "item"), -1);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, ""), -1);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, NULL), -1);
}

static const struct fr_unit_test tests[] = {
	{ "dtype", test_dtype },
	{ "good definitions", test_good_defs },
	{ "name errors", test_name_errors },
	{ "range errors", test_range_errors },
	{ "table index", test_table_index },
};

int main(void)
{
	return fr_unit_main("shard_schema", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
