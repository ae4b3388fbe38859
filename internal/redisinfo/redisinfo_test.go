package redisinfo

import (
	"slices"
	"testing"
	"time"
)

func TestCommandStats(t *testing.T) {
	tests := []struct {
		name, info string
		want       []CommandStat
	}{
		{"sorted by time", "# Commandstats\r\n" +
			"cmdstat_zadd:calls=13072,usec=117648,usec_per_call=9.00,rejected_calls=0,failed_calls=0\r\n" +
			"cmdstat_evalsha:calls=1098,usec=1466928,usec_per_call=1336.00,rejected_calls=0,failed_calls=0\r\n" +
			"cmdstat_ping:calls=4,usec=2,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n",
			[]CommandStat{{"evalsha", 1098, 1466928}, {"zadd", 13072, 117648}, {"ping", 4, 2}}},
		{"no commands", "# Commandstats\r\n", nil},
		{"other sections", "# CPU\r\nused_cpu_sys:1.5\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CommandStats(tt.info); !slices.Equal(got, tt.want) {
				t.Fatalf("CommandStats = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.000000\r\n"
	if got := CPU(info); got != 3750*time.Millisecond {
		t.Fatalf("CPU = %v, want 3.75s (children excluded)", got)
	}
}
