/*
 * f16.c — IEEE 754 binary16 <-> binary32 conversion in portable C.
 *
 * Rounding is to nearest, ties to even; values past the largest half
 * (65504) round to infinity exactly as IEEE says (65520 is the tie);
 * subnormals are produced and consumed; -0 keeps its sign.  NaNs are
 * quieted both ways while keeping the sign and the top payload bits, which
 * is what x86 F16C and ARM hardware do, so that every backend (CPU, CUDA)
 * stores the same bits.  A NaN never becomes an infinity because the quiet
 * bit is always set.  No intrinsics: this must give the same answer
 * everywhere, and compilers vectorise the bulk loops well enough.
 */
#include <string.h>

#include "common/common.h"

static inline uint32_t fr_f32_bits(float f)
{
	uint32_t x;

	memcpy(&x, &f, sizeof(x));
	return x;
}

static inline float fr_bits_f32(uint32_t x)
{
	float f;

	memcpy(&f, &x, sizeof(f));
	return f;
}

static inline uint16_t fr_f32_to_f16_inline(float f)
{
	uint32_t x = fr_f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t ax = x & 0x7fffffffu;
	uint32_t h, rem, m, shift, half;

	if (ax >= 0x7f800000u) {
		if (ax > 0x7f800000u)	/* NaN: quiet, keep top payload */
			return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
		return (uint16_t)(sign | 0x7c00u);
	}
	if (ax >= 0x477ff000u)		/* >= 65520: rounds to infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (ax >= 0x38800000u) {	/* normal half: rebias 127 -> 15 */
		h = (ax - 0x38000000u) >> 13;
		rem = ax & 0x1fffu;
		if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
			h++;	/* a mantissa carry bumps the exponent: right */
		return (uint16_t)(sign | h);
	}
	if (ax <= 0x33000000u)		/* <= 2^-25: zero (2^-25 ties to even) */
		return (uint16_t)sign;
	/* Subnormal half: value = m * 2^(e-150), unit is 2^-24. */
	m = (ax & 0x7fffffu) | 0x800000u;
	shift = 126u - (ax >> 23);	/* 14 .. 24 */
	h = m >> shift;
	rem = m & ((1u << shift) - 1u);
	half = 1u << (shift - 1u);
	if (rem > half || (rem == half && (h & 1u)))
		h++;	/* may reach 0x400, the smallest normal: right */
	return (uint16_t)(sign | h);
}

static inline float fr_f16_to_f32_inline(uint16_t hv)
{
	uint32_t h = hv;
	uint32_t sign = (h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu;
	uint32_t m = h & 0x3ffu;
	uint32_t x;

	if (e == 0x1fu) {
		x = sign | 0x7f800000u | (m << 13);
		if (m)
			x |= 0x400000u;	/* quiet the NaN */
	} else if (e != 0) {
		x = sign | ((e + 112u) << 23) | (m << 13);
	} else if (m == 0) {
		x = sign;
	} else {
		/* Subnormal half: normalise; m * 2^-24 is exact in f32. */
		e = 113u;
		while (!(m & 0x400u)) {
			m <<= 1;
			e--;
		}
		x = sign | (e << 23) | ((m & 0x3ffu) << 13);
	}
	return fr_bits_f32(x);
}

uint16_t fr_f32_to_f16(float f)
{
	return fr_f32_to_f16_inline(f);
}

float fr_f16_to_f32(uint16_t h)
{
	return fr_f16_to_f32_inline(h);
}

void fr_f32_to_f16_n(const float *src, uint16_t *dst, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = fr_f32_to_f16_inline(src[i]);
}

void fr_f16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = fr_f16_to_f32_inline(src[i]);
}
