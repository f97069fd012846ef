// Package vktest opens Vulkan devices for tests: with the validation layer on by default, failing (never
// skipping) when no driver is installed, and failing the test if the layer reported anything by the time the
// device is closed.
package vktest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// Hint is printed with every failure to open a device, so a developer knows how to get one.
const Hint = "sqnet's tests need a Vulkan driver and the validation layer: run scripts/setup (or `apt-get install " +
	"mesa-vulkan-drivers libvulkan1 vulkan-validationlayers`); select a device with SQNET_DEVICE, a driver with " +
	"VK_ICD_FILENAMES; set SQNET_VALIDATION=0 to run without the layer"

// Options returns the options tests open devices with: validation on unless SQNET_VALIDATION=0, the device from
// SQNET_DEVICE, and the pipeline cache kept in memory so parallel test binaries never share a file.
func Options() vk.Options {
	mode := vk.ValidationOn
	if os.Getenv(vk.ValidationEnv) == "0" {
		mode = vk.ValidationOff
	}
	return vk.Options{Instance: vk.InstanceOptions{Validation: mode}, PipelineCacheDir: "off"}
}

// Open opens the test device with Options. At cleanup it closes the device and fails the test if the validation
// layer reported any message during the test, teardown included.
func Open(tb testing.TB) *vk.Device {
	tb.Helper()
	return OpenWith(tb, Options())
}

// OpenWith is Open with explicit options.
func OpenWith(tb testing.TB, opts vk.Options) *vk.Device {
	tb.Helper()
	d, err := vk.Open(opts)
	if err != nil {
		tb.Fatalf("open Vulkan device: %v\n%s", err, Hint)
	}
	inst := d.Instance()
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close %s: %v", d.Name(), err)
		}
		CheckMessages(tb, inst.Messages())
	})
	return d
}

// CheckMessages fails the test for every validation message.
func CheckMessages(tb testing.TB, msgs []vk.Message) {
	tb.Helper()
	if len(msgs) == 0 {
		return
	}
	lines := make([]string, len(msgs))
	for i, m := range msgs {
		lines[i] = m.String()
	}
	tb.Errorf("%d validation message(s):\n%s", len(msgs), strings.Join(lines, "\n"))
}

var printDevice sync.Once

// OpenBench opens the device for benchmarks: without validation (the layer would dominate every timing), and
// printing the device's name once per process, so every benchmark report says which device it measured.
func OpenBench(tb testing.TB) *vk.Device {
	tb.Helper()
	opts := Options()
	opts.Instance.Validation = vk.ValidationOff
	d := OpenWith(tb, opts)
	printDevice.Do(func() {
		i := d.Info()
		fmt.Printf("device: %s (%s, %s %s, Vulkan %s)\n", i.Name, i.Type, i.Driver, i.DriverVer, i.APIVersion)
	})
	return d
}
