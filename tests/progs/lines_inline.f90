! lines_inline R D: rank R divides by D (0: SIGFPE) in ratio, a function
! the compiler inlines into the main program (-O2, whatever the build type);
! the others wait in MPI_Allreduce. The report's first frame is ratio,
! inlined, with its file and line; the next the main program at the call.
! The tests find the lines by the marker comments.
program lines_inline
  use mpi
  implicit none
  integer :: ierr, rank, r, d, one, total
  character(len=16) :: arg

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  call get_command_argument(1, arg)
  read (arg, *) r
  call get_command_argument(2, arg)
  read (arg, *) d
  one = 1
  if (rank == r) one = ratio(100, d) ! LINES-CALL
  call MPI_Allreduce(one, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  call MPI_Finalize(ierr)
contains
  integer function ratio(a, b)
    integer, intent(in) :: a, b
    ratio = a / b + 1 ! LINES-FAULT
  end function ratio
end program lines_inline
