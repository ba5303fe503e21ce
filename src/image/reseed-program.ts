/*
 * A guest that is a copy of another (a template clone, a fork of a snapshot) starts with the
 * kernel's random number generator in the very state its original had: two forks of one
 * snapshot read the same bytes from /dev/urandom (measured: 16 of 16 equal) until the kernel
 * reseeds on its own, up to a minute later. Writing fresh bytes to /dev/urandom only mixes them
 * into the input pool; the generator takes them at its next reseed. The kernel's way to tell a
 * VM it was copied is the vmgenid device, which the guest kernel here has no driver for. What is
 * left is the RNDRESEEDCRNG ioctl (root only): "reseed now, from the pool". Nothing in the guest
 * image can make an ioctl (busybox has no such applet), so this is that one call as a program:
 * a 189-byte static x86-64 ELF in the guest image (RESEED_PROGRAM), run by the identity scripts.
 */

/** The instructions, as `as` assembles them (intel syntax), at file offset 0x78. */
const CODE = [
  [0xb8, 0x02, 0x00, 0x00, 0x00], //                    mov eax, 2          ; open(
  [0x48, 0x8d, 0x3d, 0x2c, 0x00, 0x00, 0x00], //        lea rdi, [rip+0x2c] ;   "/dev/urandom",
  [0xbe, 0x01, 0x00, 0x00, 0x00], //                    mov esi, 1          ;   O_WRONLY)
  [0x0f, 0x05], //                                      syscall
  [0x85, 0xc0], //                                      test eax, eax
  [0x78, 0x16], //                                      js fail
  [0x89, 0xc7], //                                      mov edi, eax        ; ioctl(fd,
  [0xb8, 0x10, 0x00, 0x00, 0x00], //                    mov eax, 16
  [0xbe, 0x07, 0x52, 0x00, 0x00], //                    mov esi, 0x5207     ;   RNDRESEEDCRNG)
  [0x0f, 0x05], //                                      syscall
  [0x85, 0xc0], //                                      test eax, eax
  [0x78, 0x04], //                                      js fail
  [0x31, 0xff], //                                      xor edi, edi        ; exit(0)
  [0xeb, 0x04], //                                      jmp out
  [0xf7, 0xd8], //                              fail:   neg eax             ; exit(errno)
  [0x89, 0xc7], //                                      mov edi, eax
  [0xb8, 0x3c, 0x00, 0x00, 0x00], //            out:    mov eax, 60
  [0x0f, 0x05], //                                      syscall
].flat();
const PATH = Buffer.from('/dev/urandom\0');

const BASE = 0x400000;
const HEADERS = 64 + 56;

/** The program: ELF header, one loadable segment (the whole file, read + execute), code, path. */
export function reseedProgram(): Buffer {
  const size = HEADERS + CODE.length + PATH.length;
  const elf = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf, 0); // magic, 64-bit, little-endian, version 1, System V
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20); // version
  elf.writeBigUInt64LE(BigInt(BASE + HEADERS), 24); // entry: the first instruction
  elf.writeBigUInt64LE(64n, 32); // program headers right after this header
  elf.writeUInt16LE(64, 52); // header size
  elf.writeUInt16LE(56, 54); // program header size
  elf.writeUInt16LE(1, 56); // one program header, no sections
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // read + execute
  elf.writeBigUInt64LE(BigInt(BASE), 80); // virtual address (offset 0 of the file)
  elf.writeBigUInt64LE(BigInt(BASE), 88); // physical address
  elf.writeBigUInt64LE(BigInt(size), 96); // bytes in the file
  elf.writeBigUInt64LE(BigInt(size), 104); // bytes in memory
  elf.writeBigUInt64LE(0x1000n, 112); // alignment
  Buffer.from(CODE).copy(elf, HEADERS);
  PATH.copy(elf, HEADERS + CODE.length);
  return elf;
}
