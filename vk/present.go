package vk

/*
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

// Presentation to a window surface (VK_KHR_surface + VK_KHR_swapchain). Like shim.go, every struct the driver reads
// is built here in C: vulkan-go's slice conversions can be freed by the Go collector mid-call.

typedef struct {
	PFN_vkDestroySurfaceKHR destroySurface;
	PFN_vkGetPhysicalDeviceSurfaceSupportKHR surfaceSupport;
	PFN_vkGetPhysicalDeviceSurfaceCapabilitiesKHR surfaceCaps;
	PFN_vkGetPhysicalDeviceSurfaceFormatsKHR surfaceFormats;
	PFN_vkCreateSwapchainKHR createSwapchain;
	PFN_vkDestroySwapchainKHR destroySwapchain;
	PFN_vkGetSwapchainImagesKHR swapchainImages;
	PFN_vkAcquireNextImageKHR acquire;
	PFN_vkQueuePresentKHR present;
	PFN_vkCreateCommandPool createPool;
	PFN_vkDestroyCommandPool destroyPool;
	PFN_vkAllocateCommandBuffers allocCmd;
	PFN_vkBeginCommandBuffer begin;
	PFN_vkEndCommandBuffer end;
	PFN_vkCmdPipelineBarrier barrier;
	PFN_vkCmdCopyBufferToImage copyToImage;
	PFN_vkCreateSemaphore createSemaphore;
	PFN_vkDestroySemaphore destroySemaphore;
	PFN_vkCreateFence createFence;
	PFN_vkDestroyFence destroyFence;
	PFN_vkWaitForFences waitFences;
	PFN_vkResetFences resetFences;
	PFN_vkQueueSubmit submit;
	PFN_vkQueueWaitIdle queueWaitIdle;
} sq_wsi;

static const char* sq_load_wsi(void* gipa, void* instance, sq_wsi* w) {
	PFN_vkGetInstanceProcAddr g = (PFN_vkGetInstanceProcAddr)gipa;
	VkInstance in = (VkInstance)instance;
#define SQ_LOAD(field, name) if (!(w->field = (void*)g(in, name))) return name;
	SQ_LOAD(destroySurface, "vkDestroySurfaceKHR")
	SQ_LOAD(surfaceSupport, "vkGetPhysicalDeviceSurfaceSupportKHR")
	SQ_LOAD(surfaceCaps, "vkGetPhysicalDeviceSurfaceCapabilitiesKHR")
	SQ_LOAD(surfaceFormats, "vkGetPhysicalDeviceSurfaceFormatsKHR")
	SQ_LOAD(createSwapchain, "vkCreateSwapchainKHR")
	SQ_LOAD(destroySwapchain, "vkDestroySwapchainKHR")
	SQ_LOAD(swapchainImages, "vkGetSwapchainImagesKHR")
	SQ_LOAD(acquire, "vkAcquireNextImageKHR")
	SQ_LOAD(present, "vkQueuePresentKHR")
	SQ_LOAD(createPool, "vkCreateCommandPool")
	SQ_LOAD(destroyPool, "vkDestroyCommandPool")
	SQ_LOAD(allocCmd, "vkAllocateCommandBuffers")
	SQ_LOAD(begin, "vkBeginCommandBuffer")
	SQ_LOAD(end, "vkEndCommandBuffer")
	SQ_LOAD(barrier, "vkCmdPipelineBarrier")
	SQ_LOAD(copyToImage, "vkCmdCopyBufferToImage")
	SQ_LOAD(createSemaphore, "vkCreateSemaphore")
	SQ_LOAD(destroySemaphore, "vkDestroySemaphore")
	SQ_LOAD(createFence, "vkCreateFence")
	SQ_LOAD(destroyFence, "vkDestroyFence")
	SQ_LOAD(waitFences, "vkWaitForFences")
	SQ_LOAD(resetFences, "vkResetFences")
	SQ_LOAD(submit, "vkQueueSubmit")
	SQ_LOAD(queueWaitIdle, "vkQueueWaitIdle")
#undef SQ_LOAD
	return NULL;
}

#define SQ_MAX_IMAGES 8
#define SQ_MAX_FORMATS 64

// sq_swapchain is one swapchain and what presenting to it needs: per image a command buffer and a semaphore
// signalled when its copy is done; one acquire semaphore and one fence, since frames are presented one at a time.
typedef struct {
	VkDevice device;
	VkQueue queue;
	VkSurfaceKHR surface;
	VkSwapchainKHR swapchain;
	VkFormat format;
	uint32_t width, height, count;
	VkImage images[SQ_MAX_IMAGES];
	VkCommandPool pool;
	VkCommandBuffer cmds[SQ_MAX_IMAGES];
	VkSemaphore done[SQ_MAX_IMAGES];
	VkSemaphore acquired;
	VkFence fence;
	int fenceInFlight;
} sq_swapchain;

// sq_surface_format picks B8G8R8A8_UNORM or R8G8B8A8_UNORM (UNORM: the bytes written are the bytes shown, no sRGB
// encoding in between) with the sRGB-nonlinear colour space; 0 when the surface offers neither.
static VkFormat sq_surface_format(const sq_wsi* w, void* physical, uint64_t surface) {
	VkSurfaceFormatKHR f[SQ_MAX_FORMATS];
	uint32_t n = SQ_MAX_FORMATS;
	VkResult r = w->surfaceFormats((VkPhysicalDevice)physical, (VkSurfaceKHR)surface, &n, f);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) return VK_FORMAT_UNDEFINED;
	for (uint32_t i = 0; i < n; i++)
		if (f[i].format == VK_FORMAT_B8G8R8A8_UNORM && f[i].colorSpace == VK_COLOR_SPACE_SRGB_NONLINEAR_KHR) return f[i].format;
	for (uint32_t i = 0; i < n; i++)
		if (f[i].format == VK_FORMAT_R8G8B8A8_UNORM && f[i].colorSpace == VK_COLOR_SPACE_SRGB_NONLINEAR_KHR) return f[i].format;
	return VK_FORMAT_UNDEFINED;
}

static VkResult sq_surface_caps(const sq_wsi* w, void* physical, uint64_t surface, VkSurfaceCapabilitiesKHR* caps) {
	return w->surfaceCaps((VkPhysicalDevice)physical, (VkSurfaceKHR)surface, caps);
}

static uint32_t sq_surface_supported(const sq_wsi* w, void* physical, uint32_t family, uint64_t surface) {
	VkBool32 ok = VK_FALSE;
	if (w->surfaceSupport((VkPhysicalDevice)physical, family, (VkSurfaceKHR)surface, &ok) != VK_SUCCESS) return 0;
	return ok;
}

// sq_swapchain_create (re)creates s's swapchain at width×height (FIFO: vsync), passing the old one for reuse,
// and the per-image objects on first use. It needs the surface's usage to include TRANSFER_DST.
static VkResult sq_swapchain_create(const sq_wsi* w, sq_swapchain* s, uint32_t family, uint32_t minImages,
		uint32_t width, uint32_t height, uint32_t transform) {
	VkSwapchainCreateInfoKHR ci;
	memset(&ci, 0, sizeof(ci));
	ci.sType = VK_STRUCTURE_TYPE_SWAPCHAIN_CREATE_INFO_KHR;
	ci.surface = s->surface;
	ci.minImageCount = minImages;
	ci.imageFormat = s->format;
	ci.imageColorSpace = VK_COLOR_SPACE_SRGB_NONLINEAR_KHR;
	ci.imageExtent.width = width;
	ci.imageExtent.height = height;
	ci.imageArrayLayers = 1;
	ci.imageUsage = VK_IMAGE_USAGE_TRANSFER_DST_BIT;
	ci.imageSharingMode = VK_SHARING_MODE_EXCLUSIVE;
	ci.preTransform = (VkSurfaceTransformFlagBitsKHR)transform;
	ci.compositeAlpha = VK_COMPOSITE_ALPHA_OPAQUE_BIT_KHR;
	ci.presentMode = VK_PRESENT_MODE_FIFO_KHR;
	ci.clipped = VK_TRUE;
	ci.oldSwapchain = s->swapchain;
	VkSwapchainKHR sc = VK_NULL_HANDLE;
	VkResult r = w->createSwapchain(s->device, &ci, NULL, &sc);
	if (s->swapchain != VK_NULL_HANDLE) {
		w->destroySwapchain(s->device, s->swapchain, NULL);
		s->swapchain = VK_NULL_HANDLE;
	}
	if (r != VK_SUCCESS) return r;
	s->swapchain = sc;
	s->width = width;
	s->height = height;
	uint32_t n = SQ_MAX_IMAGES;
	r = w->swapchainImages(s->device, sc, &n, s->images);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) return r;
	s->count = n;
	if (s->pool == VK_NULL_HANDLE) {
		VkCommandPoolCreateInfo pci;
		memset(&pci, 0, sizeof(pci));
		pci.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
		pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
		pci.queueFamilyIndex = family;
		if ((r = w->createPool(s->device, &pci, NULL, &s->pool)) != VK_SUCCESS) return r;
		VkCommandBufferAllocateInfo ai;
		memset(&ai, 0, sizeof(ai));
		ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
		ai.commandPool = s->pool;
		ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
		ai.commandBufferCount = SQ_MAX_IMAGES;
		if ((r = w->allocCmd(s->device, &ai, s->cmds)) != VK_SUCCESS) return r;
		VkSemaphoreCreateInfo sci;
		memset(&sci, 0, sizeof(sci));
		sci.sType = VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO;
		for (int i = 0; i < SQ_MAX_IMAGES; i++)
			if ((r = w->createSemaphore(s->device, &sci, NULL, &s->done[i])) != VK_SUCCESS) return r;
		if ((r = w->createSemaphore(s->device, &sci, NULL, &s->acquired)) != VK_SUCCESS) return r;
		VkFenceCreateInfo fci;
		memset(&fci, 0, sizeof(fci));
		fci.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
		if ((r = w->createFence(s->device, &fci, NULL, &s->fence)) != VK_SUCCESS) return r;
	}
	return VK_SUCCESS;
}

// sq_present copies a tightly packed width×height image of 4-byte pixels from buf at off into the next swapchain
// image and presents it. It waits for the copy to finish, so the caller may overwrite buf as soon as it returns,
// and the acquire semaphore and the per-image objects are free again for the next frame.
static VkResult sq_present(const sq_wsi* w, sq_swapchain* s, uint64_t buf, uint64_t off) {
	uint32_t idx = 0;
	VkResult r = w->acquire(s->device, s->swapchain, UINT64_MAX, s->acquired, VK_NULL_HANDLE, &idx);
	if (r != VK_SUCCESS && r != VK_SUBOPTIMAL_KHR) return r;
	VkCommandBuffer cb = s->cmds[idx];
	VkCommandBufferBeginInfo bi;
	memset(&bi, 0, sizeof(bi));
	bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
	bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
	if ((r = w->begin(cb, &bi)) != VK_SUCCESS) return r;
	// The picture was written by a compute dispatch (or the host) in an earlier submission.
	VkMemoryBarrier mb;
	memset(&mb, 0, sizeof(mb));
	mb.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
	mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT;
	mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
	VkImageMemoryBarrier ib;
	memset(&ib, 0, sizeof(ib));
	ib.sType = VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER;
	ib.srcAccessMask = 0;
	ib.dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
	ib.oldLayout = VK_IMAGE_LAYOUT_UNDEFINED;
	ib.newLayout = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL;
	ib.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
	ib.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
	ib.image = s->images[idx];
	ib.subresourceRange.aspectMask = VK_IMAGE_ASPECT_COLOR_BIT;
	ib.subresourceRange.levelCount = 1;
	ib.subresourceRange.layerCount = 1;
	w->barrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
		VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 1, &ib);
	VkBufferImageCopy c;
	memset(&c, 0, sizeof(c));
	c.bufferOffset = off;
	c.imageSubresource.aspectMask = VK_IMAGE_ASPECT_COLOR_BIT;
	c.imageSubresource.layerCount = 1;
	c.imageExtent.width = s->width;
	c.imageExtent.height = s->height;
	c.imageExtent.depth = 1;
	w->copyToImage(cb, (VkBuffer)buf, s->images[idx], VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &c);
	ib.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
	ib.dstAccessMask = 0;
	ib.oldLayout = VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL;
	ib.newLayout = VK_IMAGE_LAYOUT_PRESENT_SRC_KHR;
	w->barrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, 0, 0, NULL, 0, NULL, 1, &ib);
	if ((r = w->end(cb)) != VK_SUCCESS) return r;
	VkPipelineStageFlags waitStage = VK_PIPELINE_STAGE_TRANSFER_BIT;
	VkSubmitInfo si;
	memset(&si, 0, sizeof(si));
	si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
	si.waitSemaphoreCount = 1;
	si.pWaitSemaphores = &s->acquired;
	si.pWaitDstStageMask = &waitStage;
	si.commandBufferCount = 1;
	si.pCommandBuffers = &cb;
	si.signalSemaphoreCount = 1;
	si.pSignalSemaphores = &s->done[idx];
	if ((r = w->resetFences(s->device, 1, &s->fence)) != VK_SUCCESS) return r;
	if ((r = w->submit(s->queue, 1, &si, s->fence)) != VK_SUCCESS) return r;
	s->fenceInFlight = 1;
	VkPresentInfoKHR pi;
	memset(&pi, 0, sizeof(pi));
	pi.sType = VK_STRUCTURE_TYPE_PRESENT_INFO_KHR;
	pi.waitSemaphoreCount = 1;
	pi.pWaitSemaphores = &s->done[idx];
	pi.swapchainCount = 1;
	pi.pSwapchains = &s->swapchain;
	pi.pImageIndices = &idx;
	VkResult pr = w->present(s->queue, &pi);
	r = w->waitFences(s->device, 1, &s->fence, VK_TRUE, UINT64_MAX);
	s->fenceInFlight = 0;
	if (r != VK_SUCCESS) return r;
	return pr;
}

// sq_swapchain_destroy waits for the queue, then destroys everything s holds except the surface.
static void sq_swapchain_destroy(const sq_wsi* w, sq_swapchain* s) {
	if (s->device == VK_NULL_HANDLE) return;
	w->queueWaitIdle(s->queue);
	if (s->fence != VK_NULL_HANDLE) w->destroyFence(s->device, s->fence, NULL);
	if (s->acquired != VK_NULL_HANDLE) w->destroySemaphore(s->device, s->acquired, NULL);
	for (int i = 0; i < SQ_MAX_IMAGES; i++)
		if (s->done[i] != VK_NULL_HANDLE) w->destroySemaphore(s->device, s->done[i], NULL);
	if (s->pool != VK_NULL_HANDLE) w->destroyPool(s->device, s->pool, NULL);
	if (s->swapchain != VK_NULL_HANDLE) w->destroySwapchain(s->device, s->swapchain, NULL);
	s->fence = VK_NULL_HANDLE;
	s->acquired = VK_NULL_HANDLE;
	memset(s->done, 0, sizeof(s->done));
	s->pool = VK_NULL_HANDLE;
	s->swapchain = VK_NULL_HANDLE;
}

static void sq_surface_destroy(const sq_wsi* w, void* instance, uint64_t surface) {
	w->destroySurface((VkInstance)instance, (VkSurfaceKHR)surface, NULL);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	vulkan "github.com/vulkan-go/vulkan"
)

// SurfaceExtension and SwapchainExtension are the extensions presentation needs: the instance one (plus the
// window system's, which the window library names) and the device one.
const (
	SurfaceExtension   = "VK_KHR_surface"
	SwapchainExtension = "VK_KHR_swapchain"
)

// ErrOutOfDate reports that the window changed (resized, moved to another screen) and the presenter must be
// resized before it can present again.
var ErrOutOfDate = errors.New("vk: the swapchain no longer matches its window")

// ErrNoPresent reports a device that cannot show pictures in the window (no queue it can present from, no
// swapchain support, or no usable surface format).
var ErrNoPresent = errors.New("vk: the device cannot present to this window")

// PixelOrder is the byte order of the 4-byte pixels a Presenter shows.
type PixelOrder int

const (
	// BGRA: byte 0 blue, 1 green, 2 red, 3 alpha (VK_FORMAT_B8G8R8A8_UNORM; most desktop drivers).
	BGRA PixelOrder = iota
	// RGBA: byte 0 red (VK_FORMAT_R8G8B8A8_UNORM).
	RGBA
)

// Handle returns the VkInstance, for a window library's surface constructor (GLFW's CreateWindowSurface). It is
// the one raw Vulkan handle vk/ hands out: a surface can only be made by the window system's library.
func (in *Instance) Handle() unsafe.Pointer { return unsafe.Pointer(in.handle) }

// SurfaceFromPointer reads a VkSurfaceKHR handle from the address a window library returned it at (GLFW's
// CreateWindowSurface returns the address of its handle variable, not the handle).
func SurfaceFromPointer(p uintptr) uint64 { return handleBits(vulkan.SurfaceFromPointer(p)) }

// Presenter shows pictures in a window: a swapchain on a surface, fed by copying a buffer of 4-byte pixels into
// each image. It is not safe for concurrent use.
type Presenter struct {
	d       *Device
	wsi     *C.sq_wsi
	sc      *C.sq_swapchain
	order   PixelOrder
	surface uint64
	closed  bool
}

// NewPresenter takes ownership of surface (a VkSurfaceKHR made from this device's instance, e.g. by GLFW) and
// creates a swapchain of width×height pixels on it. The device must have been opened with Options.Present.
func (d *Device) NewPresenter(surface uint64, width, height int) (*Presenter, error) {
	if d.closed {
		return nil, ErrClosed
	}
	p := &Presenter{d: d, surface: surface}
	p.wsi = (*C.sq_wsi)(C.calloc(1, C.size_t(unsafe.Sizeof(C.sq_wsi{}))))
	p.sc = (*C.sq_swapchain)(C.calloc(1, C.size_t(unsafe.Sizeof(C.sq_swapchain{}))))
	if p.wsi == nil || p.sc == nil {
		p.Close()
		return nil, fmt.Errorf("presenter: out of host memory")
	}
	if missing := C.sq_load_wsi(gipaPtr(), unsafe.Pointer(d.inst.handle), p.wsi); missing != nil {
		p.Close()
		return nil, fmt.Errorf("%w: the loader has no %s (enable %s and the window system's surface extension on the instance)",
			ErrNoPresent, C.GoString(missing), SurfaceExtension)
	}
	if !d.present {
		p.Close()
		return nil, fmt.Errorf("%w: %s was opened without %s (Options.Present)", ErrNoPresent, d.info.Name, SwapchainExtension)
	}
	pd := unsafe.Pointer(d.info.handle)
	if C.sq_surface_supported(p.wsi, pd, C.uint32_t(d.family), C.uint64_t(surface)) == 0 {
		p.Close()
		return nil, fmt.Errorf("%w: %s's compute queue family %d cannot present to it", ErrNoPresent, d.info.Name, d.family)
	}
	format := C.sq_surface_format(p.wsi, pd, C.uint64_t(surface))
	switch format {
	case C.VK_FORMAT_B8G8R8A8_UNORM:
		p.order = BGRA
	case C.VK_FORMAT_R8G8B8A8_UNORM:
		p.order = RGBA
	default:
		p.Close()
		return nil, fmt.Errorf("%w: the surface offers neither B8G8R8A8_UNORM nor R8G8B8A8_UNORM", ErrNoPresent)
	}
	p.sc.device = C.VkDevice(unsafe.Pointer(d.handle))
	p.sc.queue = C.VkQueue(unsafe.Pointer(d.queue))
	p.sc.surface = fromBits[C.VkSurfaceKHR](surface)
	p.sc.format = format
	if err := p.Resize(width, height); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Order is the byte order of the pixels Present expects.
func (p *Presenter) Order() PixelOrder { return p.order }

// Size is the swapchain's size in pixels; 0×0 while the window is minimised.
func (p *Presenter) Size() (width, height int) { return int(p.sc.width), int(p.sc.height) }

// Resize re-creates the swapchain for a window of width×height pixels (the surface's own size wins where it
// dictates one). A zero size — a minimised window — leaves no swapchain, and Present then shows nothing.
func (p *Presenter) Resize(width, height int) error {
	if p.closed || p.d.closed {
		return ErrClosed
	}
	var caps C.VkSurfaceCapabilitiesKHR
	if err := resultError("vkGetPhysicalDeviceSurfaceCapabilitiesKHR", vulkan.Result(C.sq_surface_caps(p.wsi,
		unsafe.Pointer(p.d.info.handle), C.uint64_t(p.surface), &caps))); err != nil {
		return err
	}
	if caps.supportedUsageFlags&C.VK_IMAGE_USAGE_TRANSFER_DST_BIT == 0 {
		return fmt.Errorf("%w: its images cannot be copied to (no TRANSFER_DST usage)", ErrNoPresent)
	}
	w, h := uint32(max(width, 0)), uint32(max(height, 0))
	if caps.currentExtent.width != 0xFFFFFFFF { // the surface's size is the window's
		w, h = uint32(caps.currentExtent.width), uint32(caps.currentExtent.height)
	} else {
		w = min(max(w, uint32(caps.minImageExtent.width)), uint32(caps.maxImageExtent.width))
		h = min(max(h, uint32(caps.minImageExtent.height)), uint32(caps.maxImageExtent.height))
	}
	if w == 0 || h == 0 {
		C.sq_swapchain_destroy(p.wsi, p.sc) // per-image objects are re-made with the next swapchain
		p.sc.width, p.sc.height = 0, 0
		return nil
	}
	images := uint32(caps.minImageCount) + 1 // one to draw while the compositor holds the others
	if caps.maxImageCount != 0 {
		images = min(images, uint32(caps.maxImageCount))
	}
	images = min(images, C.SQ_MAX_IMAGES)
	return resultError("vkCreateSwapchainKHR", vulkan.Result(C.sq_swapchain_create(p.wsi, p.sc, C.uint32_t(p.d.family),
		C.uint32_t(images), C.uint32_t(w), C.uint32_t(h), C.uint32_t(caps.currentTransform))))
}

// Present shows the picture in src — width×height 4-byte pixels in Order, rows top to bottom, tightly packed,
// where width×height is Size — and returns when the copy has finished, so src may be rewritten at once. It
// returns ErrOutOfDate when the window has changed; call Resize and draw again.
func (p *Presenter) Present(src Range) error {
	if p.closed || p.d.closed {
		return ErrClosed
	}
	if p.sc.swapchain == nil {
		return nil // minimised
	}
	if err := src.check(p.d); err != nil {
		return fmt.Errorf("present: %w", err)
	}
	if need := uint64(p.sc.width) * uint64(p.sc.height) * 4; src.Size < need {
		return fmt.Errorf("present: %d bytes for a %d×%d picture that needs %d", src.Size, p.sc.width, p.sc.height, need)
	}
	r := vulkan.Result(C.sq_present(p.wsi, p.sc, C.uint64_t(handleBits(src.Buf.blk.buf)), C.uint64_t(src.abs())))
	switch r {
	case vulkan.ErrorOutOfDate:
		return ErrOutOfDate
	case vulkan.Suboptimal:
		return ErrOutOfDate
	}
	return resultError("vkQueuePresentKHR", r)
}

// Close destroys the swapchain and the surface. The device must still be open; closing twice is harmless.
func (p *Presenter) Close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.sc != nil {
		if !p.d.closed {
			C.sq_swapchain_destroy(p.wsi, p.sc)
		}
		C.free(unsafe.Pointer(p.sc))
	}
	if p.wsi != nil {
		if p.wsi.destroySurface != nil && p.surface != 0 {
			C.sq_surface_destroy(p.wsi, unsafe.Pointer(p.d.inst.handle), C.uint64_t(p.surface))
		}
		C.free(unsafe.Pointer(p.wsi))
	}
}
