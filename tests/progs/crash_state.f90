! The faulting routine, in its own file so that it cannot be inlined into the
! main program (gfortran 12 has no NOINLINE attribute) and shows as a frame.
module crash_state
  implicit none
  ! A module variable: the compiler cannot prove it is still null where it is
  ! written, so the store stays a real SIGSEGV even at -O2.
  integer, pointer :: target_slot => null()
contains
  subroutine fortran_bad_fn(v)
    integer, intent(in) :: v
    target_slot = v
  end subroutine fortran_bad_fn
end module crash_state

