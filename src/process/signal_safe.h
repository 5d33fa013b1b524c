#pragma once
// What a child may do between fork and exec, where only async-signal-safe calls are
// allowed (no allocation, no locks, no stdio).

namespace sm::process {

/// Writes `n` (>= 0) in decimal at `out`, then a NUL; returns the end (the NUL's place).
inline char* put_decimal(char* out, long n) {
  char digits[24];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0 && len < 23);
  while (len) *out++ = digits[--len];
  *out = '\0';
  return out;
}

}  // namespace sm::process
