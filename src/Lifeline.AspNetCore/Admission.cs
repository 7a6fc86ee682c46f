namespace Lifeline.AspNetCore;

/// <summary>What admission decided for an upgrade request.</summary>
internal enum Admission
{
    /// <summary>The connection may open.</summary>
    Admitted,

    /// <summary>Refused by <see cref="LifelineServerOptions.Authorize"/>: 1008.</summary>
    Unauthorized,

    /// <summary>Refused because a drain has begun: 1012 (or 1013) with a restart hint.</summary>
    Draining,

    /// <summary>Refused because <see cref="LifelineServerOptions.MaxConnections"/> are open: 1013.</summary>
    OverCapacity,

    /// <summary>Refused because <see cref="LifelineServerOptions.MaxNewConnectionsPerSecond"/> was reached: 1013.</summary>
    OverRate,
}

internal static class AdmissionExtensions
{
    /// <summary>The tag used in metrics and logs.</summary>
    public static string Tag(this Admission admission) => admission switch
    {
        Admission.Admitted => "admitted",
        Admission.Unauthorized => "unauthorized",
        Admission.Draining => "draining",
        Admission.OverCapacity => "capacity",
        Admission.OverRate => "rate",
        _ => throw new ArgumentOutOfRangeException(nameof(admission), admission, null),
    };
}
