package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name   string
		status []byte
		want   int64
	}{
		{"process, VmHWM before VmRSS", readFixture(t, "status"), 41384},
		{"kernel thread: no VmRSS", readFixture(t, "status-kthread"), 0},
		{"VmRSS without a value", []byte("Name:\tx\nVmRSS:\n"), 0},
		{"last line without newline", []byte("Name:\tx\nVmRSS:\t  512 kB"), 512},
		{"empty", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseVmRSS(tt.status); got != tt.want {
				t.Fatalf("parseVmRSS = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		name string
		stat []byte
		want time.Duration
	}{
		// utime 250 + stime 120 ticks; the children's 7 and 9 do not count.
		{"name with spaces and parentheses", readFixture(t, "stat"), 3700 * time.Millisecond},
		{"plain name", []byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 9 10 11"), 110 * time.Millisecond},
		{"cut short before stime", []byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5"), 0},
		{"no name", []byte("1 init S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseCPU(tt.stat); got != tt.want {
				t.Fatalf("parseCPU = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseLoadAvg(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{readFixture(t, "loadavg"), "3.42"},
		{nil, "?"},
	}
	for _, tt := range tests {
		if got := parseLoadAvg(tt.in); got != tt.want {
			t.Errorf("parseLoadAvg(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestProcOfThisProcess reads the live /proc files of the test itself:
// the fixtures above have the layout the kernel writes.
func TestProcOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if rss := rssKiB(os.Getpid()); rss < 1024 {
		t.Errorf("RSS of this test %d KiB, want at least 1 MiB", rss)
	}
	// Burn CPU until a clock tick is counted.
	deadline := time.Now().Add(10 * time.Second)
	for cpuOf(os.Getpid()) == 0 && time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
	}
	if cpuOf(os.Getpid()) == 0 {
		t.Errorf("no CPU time counted for this test")
	}
	if l := loadAvg(); l == "?" {
		t.Errorf("no load average")
	}
	const noSuchPid = 1 << 30 // above the kernel's pid_max limit
	if rss, cpu := rssKiB(noSuchPid), cpuOf(noSuchPid); rss != 0 || cpu != 0 {
		t.Errorf("a missing process: RSS %d, CPU %v, want 0 and 0", rss, cpu)
	}
}
