// The download layer of `enf data fetch`: one URL to one file, resumable and
// verified, through libcurl (http://, https://, file://, or a plain path).
// Errors are one-line std::runtime_error naming the URL and what was expected.
#pragma once

#include <string>

#include "datasets/checksum.hpp"

namespace enf {

struct DownloadOptions {
  // A progress line on stderr (name, MB done / total, percent, rate, ETA),
  // redrawn with '\r' at most ~5 times a second when stderr is a terminal,
  // else one line every ~10% (CI logs); also the resume / retry notices.
  bool progress = true;
  long connect_timeout_s = 30;
  long low_speed_time_s = 60;  // abort a transfer that stalls (< 1 byte/s) this long
  int retries = 2;             // transient failures (reset, partial transfer, HTTP 5xx) are retried, resuming
};

// Downloads url to dest (the parent directory is created if needed).
//  - Data goes to dest + ".part"; nothing half-written ever sits under dest.
//  - An interrupted transfer leaves dest + ".part"; the next call resumes it
//    with an HTTP Range request. If the server ignores the range (200, not
//    206) or cannot satisfy it (416), the part file is restarted from zero.
//  - After the transfer, expected_size (if >= 0) and the checksum (if its kind
//    is not None) are verified; on a mismatch the part file is deleted, dest is
//    not created, and the error names the URL and both values.
//  - On success the part file is fsync'ed and renamed over dest.
//  - HTTP status >= 400 is an error, never saved as data. Offline, refused
//    connection, 404 ...: one clear line naming the URL.
void download_file(const std::string& url, const std::string& dest, const Checksum& expected,
                   long long expected_size, const std::string& display_name, const DownloadOptions& opt = {});

}  // namespace enf
