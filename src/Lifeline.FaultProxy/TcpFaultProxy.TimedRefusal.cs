namespace Lifeline.FaultProxy;

public sealed partial class TcpFaultProxy
{
    /// <summary>
    /// One <see cref="RefuseConnections(TimeSpan?)"/> with a period: its timer calls <see cref="EndRefusal"/> with this
    /// object, so a callback that fires after the refusal was replaced or ended recognises itself as stale.
    /// </summary>
    private sealed class TimedRefusal : IDisposable
    {
        private readonly TcpFaultProxy _proxy;
        private readonly ITimer _timer;

        public TimedRefusal(TcpFaultProxy proxy, TimeSpan period)
        {
            _proxy = proxy;
            _timer = proxy._options.TimeProvider.CreateTimer(static state => ((TimedRefusal)state!).End(), this, period, Timeout.InfiniteTimeSpan);
        }

        public void RetryAfter(TimeSpan delay) => _timer.Change(delay, Timeout.InfiniteTimeSpan);

        public void Dispose() => _timer.Dispose();

        private void End() => _proxy.EndRefusal(this);
    }
}
