package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100
// on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// rssKiB reads the resident set size of pid from /proc, 0 when it cannot
// be read.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseVmRSS(b)
}

// parseVmRSS returns the VmRSS line of a /proc/PID/status file in KiB, 0
// when there is none (a kernel thread, a zombie).
func parseVmRSS(status []byte) int64 { return parseStatusKiB(status, "VmRSS:") }

// parseStatusKiB returns the line of a /proc/PID/status file that starts
// with key (VmRSS:, VmHWM:), in KiB, 0 when there is none.
func parseStatusKiB(status []byte, key string) int64 {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(string(f[0]), 10, 64)
		return n
	}
	return 0
}

// cpuOf returns the user + system CPU time pid has used, 0 when it cannot
// be read.
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	return parseCPU(b)
}

// parseCPU returns utime + stime of a /proc/PID/stat line, 0 when the line
// is malformed.
func parseCPU(stat []byte) time.Duration {
	// The command name, in parentheses, may hold spaces and parentheses:
	// count fields after its last closing parenthesis. utime and stime are
	// fields 14 and 15 of the line, 12 and 13 after the name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return time.Duration(ut+st) * clockTick
}

// peakRSS samples the RSS of pid every 50 ms until stop is closed, then
// sends the peak on the channel it returns.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rssKiB(pid); r > peak {
				peak = r
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// loadAvg returns the 1-minute load average, "?" when it cannot be read:
// the figures of a bench depend on what else the machine runs.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return parseLoadAvg(b)
}

func parseLoadAvg(b []byte) string {
	if f := bytes.Fields(b); len(f) > 0 {
		return string(f[0])
	}
	return "?"
}

// raiseNoFile lifts the soft open-file limit to the hard one (children
// inherit it) and returns the limit now in force.
func raiseNoFile() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, fmt.Errorf("raise open-file limit to %d: %w", r.Max, err)
		}
	}
	return r.Cur, nil
}
